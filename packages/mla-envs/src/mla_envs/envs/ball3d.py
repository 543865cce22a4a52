"""3DBall: balance a ball on the head of a tilting cube, vectorised with numpy.

Rules follow Unity's ``Examples/3DBall/Scripts/Ball3DAgent.cs`` and its prefab:

* The agent is a 5x5x5 cube that only rotates about its centre. A ball of radius
  ``0.5 * scale`` is dropped from 4 units above the centre, at a uniform random point
  of [-1.5, 1.5]^2 in x and z, with zero velocity; the cube starts rotated by a uniform
  [-10, 10] degrees about x, then about z.
* Observations (8): the cube's rotation quaternion components z and x, the ball's
  position relative to the cube centre (3), the ball's velocity (3).
* Actions (2 continuous, clamped to [-1, 1]): rotate by ``2 * action`` degrees about the
  local z and x axes, at every physics step, unless that tilt already reaches its limit
  (quaternion component |z| or |x| at 0.25, about 29 degrees).
* Unity's fixed timestep is 0.02 s and the agent decides every 5 steps, repeating its
  action in between (``DecisionPeriod: 5``, ``TakeActionsBetweenDecisions``). So one
  decision here is 5 physics steps.
* Reward per decision: +0.1, or -1 when the ball has fallen (more than 2 units below the
  cube centre, or more than 3 units from it in x or z), which ends the episode.
* ``MaxStep: 5000`` physics steps (1000 decisions): then the episode is interrupted
  (``max_step_reached``). A perfect episode returns 100.

Physics (Unity uses PhysX; this is a small rigid-body model of the same situation):
gravity 9.81; while the ball's centre is over the top face it rests on it (no bounce)
and rolls without slipping, so its acceleration along the face is 5/7 of gravity's
tangential part (solid sphere); off the face it falls freely. Environment parameters
``mass`` (default 1) and ``scale`` (default 1) are read per agent at each episode start,
like ``SetBall()``: ``scale`` sets the radius, and so the resting height; ``mass``
matters through air drag (quadratic, force from the ball's size, so acceleration
scales with 1 / mass): a light ball is slowed more, a heavy one rolls as in vacuum.
"""

from __future__ import annotations

import numpy as np

from mla_envs.envs.base import Actions, AgentBatch, BehaviorSpec, VectorEnv
from mla_envs.parameters import EnvironmentParameters

FIXED_DELTA_TIME = 0.02  # s, Unity's default physics step
DECISION_PERIOD = 5  # physics steps per decision
MAX_STEP = 5000  # physics steps per episode
GRAVITY = 9.81  # m/s^2
HALF_SIZE = 2.5  # half the cube's edge: the top face is 2.5 above the centre
BALL_RADIUS = 0.5  # at scale 1
DEGREES_PER_STEP = 2.0  # rotation at |action| = 1, per physics step
TILT_LIMIT = 0.25  # limit on the quaternion's x and z components
START_HEIGHT = 4.0
START_SPREAD = 1.5
START_TILT = 10.0  # degrees
FALL_DEPTH = 2.0
FALL_DISTANCE = 3.0
ALIVE_REWARD = 0.1
FALL_REWARD = -1.0
ROLLING_FACTOR = 5.0 / 7.0  # solid sphere rolling without slipping
AIR_DENSITY = 1.225  # kg/m^3
DRAG_COEFFICIENT = 0.47  # sphere


def quaternion_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of ``[n, 4]`` quaternions stored ``(x, y, z, w)`` like Unity."""
    ax, ay, az, aw = a.T
    bx, by, bz, bw = b.T
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=1,
    )


def axis_rotation(axis: int, degrees: np.ndarray) -> np.ndarray:
    """``[n, 4]`` quaternions rotating by ``degrees`` about axis 0 (x), 1 (y) or 2 (z)."""
    half = np.radians(degrees) / 2
    q = np.zeros((len(degrees), 4))
    q[:, axis] = np.sin(half)
    q[:, 3] = np.cos(half)
    return q


def cube_axes(q: np.ndarray) -> np.ndarray:
    """The cube's local x, y (up) and z axes in world coordinates.

    :param q: ``[n, 4]`` unit quaternions ``(x, y, z, w)``.
    :return: ``[3, n, 3]``: ``axes[i]`` is the image of the i-th unit vector, i.e. the
        i-th column of the rotation matrix.
    """
    x, y, z, w = q.T
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz, xw, yw, zw = x * y, x * z, y * z, x * w, y * w, z * w
    return np.stack(
        [
            np.stack([1 - 2 * (yy + zz), 2 * (xy + zw), 2 * (xz - yw)], axis=1),
            np.stack([2 * (xy - zw), 1 - 2 * (xx + zz), 2 * (yz + xw)], axis=1),
            np.stack([2 * (xz + yw), 2 * (yz - xw), 1 - 2 * (xx + yy)], axis=1),
        ]
    )


class Ball3DEnv(VectorEnv):
    """``num_agents`` cubes, each balancing its own ball.

    :param num_agents: number of agents; the Unity scene has 12.
    :param parameters: source of ``mass`` and ``scale``.
    """

    seconds_per_step = FIXED_DELTA_TIME * DECISION_PERIOD

    def __init__(
        self, num_agents: int = 12, parameters: EnvironmentParameters | None = None
    ) -> None:
        super().__init__(parameters)
        self.num_agents = n = num_agents
        self.spec = BehaviorSpec("3DBall", observation_shapes=((8,),), continuous_size=2)
        self.agent_ids = np.arange(n, dtype=np.int32)
        self.rng = np.random.default_rng(0)
        self.rotation = np.tile([0.0, 0.0, 0.0, 1.0], (n, 1))  # cube, (x, y, z, w)
        self.ball_position = np.zeros((n, 3))  # relative to the cube centre
        self.ball_velocity = np.zeros((n, 3))
        self.radius = np.full(n, BALL_RADIUS)
        self.mass = np.ones(n)
        self.steps = np.zeros(n, dtype=np.int64)  # physics steps this episode

    def seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self) -> AgentBatch:
        self._start_episodes(np.ones(self.num_agents, dtype=bool))
        return self._batch(self.agent_ids, np.zeros(self.num_agents, np.float32))

    def step(self, actions: Actions) -> tuple[AgentBatch, AgentBatch]:
        degrees = DEGREES_PER_STEP * np.clip(actions.continuous, -1.0, 1.0)
        fell = np.zeros(self.num_agents, dtype=bool)
        for _ in range(DECISION_PERIOD):
            self._turn(2, degrees[:, 0] * ~fell)
            self._turn(0, degrees[:, 1] * ~fell)
            fell |= self._fallen()
            self._physics(~fell)
        self.steps += DECISION_PERIOD
        interrupted = ~fell & (self.steps >= MAX_STEP)
        done = fell | interrupted
        reward = np.where(fell, FALL_REWARD, ALIVE_REWARD).astype(np.float32)
        terminal = self._batch(self.agent_ids[done], reward[done], interrupted[done])
        self._start_episodes(done)
        decision = self._batch(self.agent_ids, np.where(done, 0.0, reward))
        return terminal, decision

    def stats(self) -> dict[str, float]:
        return {
            "3DBall/Ball Mass": float(self.mass.mean()),
            "3DBall/Ball Scale": float(self.radius.mean() / BALL_RADIUS),
        }

    def _start_episodes(self, which: np.ndarray) -> None:
        """``OnEpisodeBegin`` for the agents selected by the boolean mask ``which``."""
        k = int(which.sum())
        if k == 0:
            return
        tilt_x = self.rng.uniform(-START_TILT, START_TILT, k)
        tilt_z = self.rng.uniform(-START_TILT, START_TILT, k)
        rotation = quaternion_multiply(axis_rotation(0, tilt_x), axis_rotation(2, tilt_z))
        self.rotation[which] = rotation
        position = np.zeros((k, 3))
        position[:, 0] = self.rng.uniform(-START_SPREAD, START_SPREAD, k)
        position[:, 1] = START_HEIGHT
        position[:, 2] = self.rng.uniform(-START_SPREAD, START_SPREAD, k)
        self.ball_position[which] = position
        self.ball_velocity[which] = 0.0
        self.steps[which] = 0
        self.mass[which] = self.parameters.sample("mass", 1.0, k)
        self.radius[which] = BALL_RADIUS * self.parameters.sample("scale", 1.0, k)

    def _turn(self, axis: int, degrees: np.ndarray) -> None:
        """``transform.Rotate`` about local axis 0 (x) or 2 (z), away from the limit.

        Right-multiplies the rotation by ``(sin(a/2) e_axis, cos(a/2))``, written out.
        """
        q = self.rotation
        component = q[:, axis]
        allowed = ((component < TILT_LIMIT) & (degrees > 0)) | (
            (component > -TILT_LIMIT) & (degrees < 0)
        )
        half = np.radians(np.where(allowed, degrees, 0.0)) / 2
        s, c = np.sin(half), np.cos(half)
        x, y, z, w = q.T.copy()
        if axis == 0:
            q[:, 0], q[:, 1], q[:, 2], q[:, 3] = (
                x * c + w * s,
                y * c + z * s,
                z * c - y * s,
                w * c - x * s,
            )
        else:
            q[:, 0], q[:, 1], q[:, 2], q[:, 3] = (
                x * c + y * s,
                y * c - x * s,
                z * c + w * s,
                w * c - z * s,
            )

    def _fallen(self) -> np.ndarray:
        p = self.ball_position
        return (
            (p[:, 1] < -FALL_DEPTH)
            | (np.abs(p[:, 0]) > FALL_DISTANCE)
            | (np.abs(p[:, 2]) > FALL_DISTANCE)
        )

    def _physics(self, moving: np.ndarray) -> None:
        """One physics step of ``FIXED_DELTA_TIME`` for the agents in ``moving``."""
        dt = FIXED_DELTA_TIME
        p, v, r = self.ball_position, self.ball_velocity, self.radius
        side_x, up, side_z = cube_axes(self.rotation)
        was_above = (p * up).sum(1) > HALF_SIZE  # centre above the top face's plane
        # Gravity, then quadratic air drag a = -(rho Cd pi r^2 / 2m) |v| v (implicit).
        v_new = v - [0.0, GRAVITY * dt, 0.0]
        drag = 0.5 * AIR_DENSITY * DRAG_COEFFICIENT * np.pi * r**2 / self.mass
        v_new /= (1.0 + dt * drag * np.sqrt((v_new * v_new).sum(1)))[:, None]
        p_new = p + v_new * dt
        # Resting on the top face: push out along the face normal, cancel the velocity
        # into the face, and keep only 5/7 of gravity's pull along the face (rolling).
        gap = (p_new * up).sum(1) - HALF_SIZE - r
        on_top = (
            moving
            & was_above
            & (gap < 0)
            & (np.abs((p_new * side_x).sum(1)) <= HALF_SIZE)
            & (np.abs((p_new * side_z).sum(1)) <= HALF_SIZE)
        )[:, None]
        into = np.minimum((v_new * up).sum(1), 0.0)[:, None]
        gravity_along = -GRAVITY * (np.array([0.0, 1.0, 0.0]) - up[:, 1:2] * up)
        v_new = np.where(
            on_top, v_new - into * up - (1 - ROLLING_FACTOR) * gravity_along * dt, v_new
        )
        p_new = np.where(on_top, p_new - gap[:, None] * up, p_new)
        self.ball_position = np.where(moving[:, None], p_new, p)
        self.ball_velocity = np.where(moving[:, None], v_new, v)

    def _batch(
        self,
        agent_ids: np.ndarray,
        rewards: np.ndarray,
        interrupted: np.ndarray | None = None,
    ) -> AgentBatch:
        observation = np.concatenate(
            [
                self.rotation[agent_ids][:, [2, 0]],
                self.ball_position[agent_ids],
                self.ball_velocity[agent_ids],
            ],
            axis=1,
        ).astype(np.float32)
        if interrupted is None:
            interrupted = np.zeros(len(agent_ids), dtype=bool)
        return AgentBatch(agent_ids, (observation,), rewards.astype(np.float32), interrupted)
