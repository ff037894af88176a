"""The one training loop of PPO1 and PPO2, and everything they share around it: the policy, its acting
path, the learner, normalisation, clip ranges, runner construction, predict, save and load.

A trainer *has* a model, an actor, a learner and (while learning) a runner and a logger. `Algorithm.learn`
is the iteration, written once (as Stable-Baselines3's ``OnPolicyAlgorithm.learn``): schedule → rollout →
GAE → observation statistics → the shared update → NaN guard → episode statistics over ranks → one log
row → evaluation → checkpoint and signals. PPO1 and PPO2 are small classes of hooks that supply only what
differs (spec §10): the schedule and its counter (`Algorithm.schedule`, `Algorithm.count`), the budget
(`Algorithm.plan_run`, `Algorithm.budget_left`), the log row with the original key names
(`Algorithm.log_row`), and their hyperparameter names (their configs).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import keras
import numpy as np

from tfppo.training import callbacks, checkpoint, mpi
from tfppo.io import log_keys as log_keys_module
from tfppo.core.acting import PerRowGenerators, act, make_actor
from tfppo.util.atomic import write_text
from tfppo.envs.episodes import EpisodeTracker
from tfppo.envs.normalize import VecNormalize
from tfppo.envs.spaces import is_image_space
from tfppo.envs.factory import EnvSource, make_vec_env, probe_spaces, seed_vec_env
from tfppo.util.errors import ConfigError
from tfppo.training.evaluation import PeriodicEvaluator
from tfppo.core.learner import Learner, MinibatchPlan
from tfppo.io.logger import Logger
from tfppo.core.policy import build_policy
from tfppo.core.recurrent import RecurrentState, build_recurrent_policy, make_recurrent_actor
from tfppo.core.rollout import Rollout, Runner
from tfppo.util.running_stats import RunningMeanStd
from tfppo.config.seeding import RunSeeds
from tfppo.config.semantics import Semantics, get_preset

VEC_NORMALIZE_GAMMA = 0.99  # baselines.run / SB VecNormalize default (spec §5.4), independent of the algorithm's γ
POLICY_OBS_MIN_STD = 0.1  # [B] σ = sqrt(max(sumsq/count − μ², 1e-2)) (spec §5.1)
POLICY_OBS_PRIOR_COUNT = 1e-2  # [B] sum = 0, sumsq = count = 1e-2: prior mean 0, var 1, weight 1e-2


def resolve_semantics(preset: str, semantics: Semantics | dict | None) -> Semantics:
    """A whole record, or the preset with a dict of switches applied."""
    if isinstance(semantics, Semantics):
        return semantics
    return get_preset(preset).replace(**(semantics or {}))


def check_semantics_fit(semantics: Semantics, observation_space: gym.Space, config) -> None:
    """Switches that cannot apply to this env or config stop with one line, before anything runs."""
    float_box = isinstance(observation_space, gym.spaces.Box) and not is_image_space(observation_space)
    # [B] PPO1's CnnPolicy has no observation normalisation (images are only /255): obs_norm=policy on
    # images is that policy, not an error (spec §5.1); env-side VecNormalize of pixels stays refused.
    policy_on_images = semantics.obs_norm == "policy" and is_image_space(observation_space)
    if semantics.obs_norm != "none" and not float_box and not policy_on_images:
        raise ConfigError(f"semantics obs_norm={semantics.obs_norm} needs a float Box observation space; "
                          f"this env has {type(observation_space).__name__}: use obs_norm=none")
    if semantics.value_clip == "separate" and getattr(config, "cliprange_vf", None) is None:
        raise ConfigError("semantics value_clip=separate needs a positive --cliprange_vf (PPO2)")


MPI_GRADIENTS = ("auto", "replicate", "allreduce")


@dataclass(frozen=True)
class UpdateSchedule:
    """What one update's schedules give, computed before its rollout: the learning rate, the clip ranges
    ε and ε_v, and the schedule position the trainer logs (PPO1's lrmult, PPO2's frac)."""

    learning_rate: float
    clip: float
    clip_vf: float | None
    position: float


@dataclass(frozen=True)
class IterationTimes:
    """The clock of one iteration, read the same way for both trainers: seconds from the start of
    ``learn`` to the start of this update's rollout and to the end of its update, and the iteration's own
    length (rollout + update)."""

    started: float
    finished: float

    @property
    def seconds(self) -> float:
        return self.finished - self.started


class Algorithm:
    """Base of `tfppo.PPO1` and `tfppo.PPO2`: everything but the training loop."""

    algo: ClassVar[str]
    config_class: ClassVar[type]
    num_envs: int

    # PPO1 checkpoints always hold every rank's RNG streams; PPO2's only under MPI (one process: its own).
    rng_per_rank: ClassVar[bool] = False
    # PPO1's episode window is always the pool of every rank's episodes (spec §8), its runner's tracker
    # this rank's own; PPO2's runner counts straight into the window when it is the only process.
    pools_rank_episodes: ClassVar[bool] = False

    def __init__(self, config, semantics: Semantics, *, env_source: EnvSource,
                 log_dir: str | os.PathLike | None = None,
                 verbose: int = 1, comm: Any = None, log_keys: str | None = None, log_interval: int | None = None,
                 xla: bool = True, mpi_gradients: str = "auto"):
        """Under ``mpirun -n W`` (spec §7.1, §8; [B] ppo2 with MpiAdamOptimizer for PPO2): every rank checks it
        runs the same configuration, an exception on any rank aborts the job, each minibatch gradient is
        averaged (``mpi_gradients``: `tfppo.core.learner`), rank 0's initial weights are broadcast, and only rank 0
        logs and writes. ``env_source`` is what every env is built from (`tfppo.envs.factory.EnvSource`; under
        MPI each rank builds its own from its own arguments)."""
        self.comm = comm if comm is not None else mpi.world()
        self.rank, self.world_size = self.comm.Get_rank(), self.comm.Get_size()
        if self.world_size > 1 and semantics.target_kl is not None:
            raise ConfigError("semantics target_kl is per-rank and would desynchronise MPI ranks; use it with one "
                              "process")
        env_source.check_num_envs(self.num_envs)
        mpi.check_same_config({"config": config.to_dict(), "semantics": semantics.to_dict(),
                               "env": env_source.description()}, self.comm)
        mpi.abort_on_exception(self.comm)  # an exception on one rank must end the job, never hang it
        self.config = config
        self.semantics = semantics
        log_keys_module.check(log_keys, log_interval)
        # spec §9: the preset's library decides the log names and [B] ppo2's stdout cadence (`tfppo.io.log_keys`)
        self.log_keys = log_keys or log_keys_module.default_style(config.preset)
        self.log_interval = log_interval or log_keys_module.default_log_interval(self.algo, config.preset)
        self.log_dir = Path(log_dir) if log_dir is not None and self.rank == 0 else None
        self.verbose = verbose if self.rank == 0 else 0
        rank = self.rank
        self.env_source = env_source
        self.observation_space, self.action_space = probe_spaces(env_source)
        check_semantics_fit(semantics, self.observation_space, config)
        self.seeds = RunSeeds(config.seed)
        keras.utils.set_random_seed(config.seed)
        self.recurrent = getattr(config, "recurrent", False)
        if self.recurrent:  # PPO2's lstm / lnlstm: a NumPy LSTM step acts (a compiled one after a CNN trunk)
            self.policy = build_recurrent_policy(self.observation_space, self.action_space, semantics,
                                                 config.network, config.policy, config.nlstm,
                                                 seed=self.seeds.weights())
            self.actor = make_recurrent_actor(self.policy)
        else:
            self.policy = build_policy(self.observation_space, self.action_space, semantics, config.network,
                                       seed=self.seeds.weights())
            self.actor = make_actor(self.policy)
        self.predict_state: RecurrentState | None = None  # predict's LSTM state (recurrent policies)
        self.learner = Learner(self.policy, semantics, self.minibatch_plan(), ent_coef=config.ent_coef,
                               xla=xla, **self._gradient_averaging(mpi_gradients))
        self.normalizer = self._make_normalizer()
        self.obs_stats = RunningMeanStd(self.policy.obs_mean.shape, epsilon=POLICY_OBS_PRIOR_COUNT) \
            if self.policy.policy_obs_norm else None
        self.tracker = EpisodeTracker(self.num_envs)
        # one action stream per global env index: PPO2 envs 0..N-1 in a process, PPO1 rank r (seeding.py)
        self.action_rngs = [self.seeds.actions(self.first_env_index + i) for i in range(self.num_envs)]
        self.shuffle_rng = self.seeds.shuffles(rank)
        self.predict_rng = self.seeds.predict()
        self.num_timesteps = 0
        self.n_updates = 0
        self.runner: Runner | None = None  # built on the first learn(): loading for predict needs no envs
        self.evaluator = PeriodicEvaluator(0, 1, None, config.seed)  # off until learn(eval_freq=...)
        self.run_state: dict[str, Any] = {}  # this learn() call's budget and position (saved in checkpoints)
        self.pending_resume: dict[str, Any] | None = None  # run_state of an unfinished run loaded from a checkpoint
        self.resume_point: tuple[int, int] | None = None  # (logged rows, timesteps) a resumed log continues from
        self.last_checkpoint: str | None = None  # newest checkpoint written by learn()
        mpi.broadcast_weights(self.policy, self.comm)  # [B] adam.sync(): rank 0's parameters everywhere
        self.actor.sync()

    @property
    def first_env_index(self) -> int:
        """Global index of this process's first env: rank·N (PPO1: N = 1), so W ranks × N envs use the env
        and action streams of one process with W·N envs (`tfppo.config.seeding`)."""
        return self.rank * self.num_envs

    def minibatch_plan(self) -> MinibatchPlan:
        raise NotImplementedError

    @property
    def model(self) -> keras.Model:
        """The Keras actor-critic: ``model(obs) -> (pd_params, value)``."""
        return self.policy

    def _gradient_averaging(self, mpi_gradients: str) -> dict[str, Any]:
        """The Learner's MPI averaging: ``auto`` replicates batches of vector observations (one exchange per
        update, the update stays in XLA) and Allreduces the gradients of image policies (their batches
        are too large to exchange); one process needs neither."""
        if mpi_gradients not in MPI_GRADIENTS:
            raise ConfigError(f"--mpi_gradients {mpi_gradients!r} is invalid; allowed: {', '.join(MPI_GRADIENTS)}")
        if self.world_size == 1:
            return {}
        if mpi_gradients == "auto":
            mpi_gradients = "allreduce" if self.policy.is_image else "replicate"
        if mpi_gradients == "replicate":
            return {"replicas": mpi.BatchReplicator(self.comm)}
        return {"grad_reducer": mpi.GradientAverager(self.comm)}

    # -- the one loop ----------------------------------------------------------------------
    def learn(self, total_timesteps: int | None = None, *, save_path: str | os.PathLike | None = None,
              save_freq: int = 0, keep_checkpoints: int = 2, eval_freq: int = 0, eval_episodes: int = 10,
              callback: Any = None):
        """Train until the budget is spent; ``total_timesteps`` defaults to the config's budget (PPO1: its
        one budget of max_timesteps/max_episodes/max_iters/max_seconds). Counters restored from a checkpoint
        count toward it, and an agent loaded from an unfinished periodic checkpoint resumes that run to its
        own budget. With ``save_path``, a checkpoint ``save_path/ckpt-<steps>`` is written every
        ``save_freq`` steps and at the end, keeping the newest ``keep_checkpoints`` (`tfppo.training.run_control`).
        ``eval_freq`` > 0 adds deterministic evaluations on rank 0 (`tfppo.training.evaluation`), the last
        one after the final update. ``callback`` (`tfppo.training.callbacks`: a BaseCallback, a list, or a
        callable) is called around each update; when it returns False the loop ends after that update, with
        the final evaluation and checkpoint as at the end of the budget (under MPI rank 0's answer counts)."""
        callback = callbacks.as_callback(callback)
        run = self.begin_run(self.plan_run(total_timesteps))
        if self.runner is None:
            self.runner = self.make_runner()
        logger = self.make_logger(self.planned_total(run))
        self.write_run_header()
        self.start_evaluation(eval_freq, eval_episodes)
        comm = self.comm if self.world_size > 1 else None
        callback.init_callback(self)
        callback.on_training_start()
        stop = False
        t_first = time.perf_counter()
        with logger, self.run_control(logger, save_path, save_freq, keep_checkpoints) as control:
            while not stop and self.budget_left(run, time.perf_counter() - t_first):
                started = time.perf_counter() - t_first
                schedule = self.schedule(run)
                rollout = self.runner.run()
                batch = rollout.to_batch(self.config.gamma, self.config.lam)
                callback.update_state(schedule=schedule, rollout=rollout, batch=batch, result=None)
                callback.on_rollout_end()
                self.update_policy_obs_stats(rollout, comm)
                result = self.learner.update(batch, learning_rate=schedule.learning_rate, clip=schedule.clip,
                                             clip_vf=schedule.clip_vf, rng=self.shuffle_rng)
                control.check(result)
                self.actor.sync()
                times = IterationTimes(started, time.perf_counter() - t_first)
                episodes, losses = rollout.episodes, result.logged
                if comm is not None:  # spec §8: every rank's episodes and the mean of every rank's losses
                    episodes = mpi.allgather_episodes(episodes, comm)
                    losses = mpi.mean_over_ranks(losses, comm)
                if self.runner.tracker is not self.tracker:  # the runner's tracker holds this rank's only
                    self.tracker.extend(episodes)
                self.count(run, episodes)
                self.num_timesteps += self.steps_per_update
                self.n_updates += 1
                self.penalty_step(logger, result, comm)
                control.record(logger, rollout, batch, result)
                self.log_row(logger, run, schedule, batch, losses, result, len(episodes), times)
                logger.record(log_keys_module.UNIFIED_TIME_KEY, times.finished)
                row = logger.dump(self.num_timesteps)
                self.evaluator.maybe_evaluate(self, self.num_timesteps)  # before a checkpoint can be written
                callback.update_state(last_row=row, result=result)
                stop = self.callback_stops(callback, comm)
                control.end_iteration()
                logger.advance(self.progress_position())
            self.evaluator.maybe_evaluate(self, self.num_timesteps, final=True)
            control.finish()
        callback.on_training_end()
        return self

    @staticmethod
    def callback_stops(callback: callbacks.BaseCallback, comm) -> bool:
        """This update's ``on_update_end`` answer; under MPI rank 0's, broadcast (every rank asks its own
        callbacks, and every rank takes part in the broadcast whether or not it was given any)."""
        stop = callbacks.wants_stop(callback.on_update_end())
        return bool(comm.bcast(stop, root=0)) if comm is not None else stop

    # -- what a trainer supplies to the loop ---------------------------------------------------
    @property
    def steps_per_update(self) -> int:
        """Env steps of one update over all ranks."""
        raise NotImplementedError

    def plan_run(self, total_timesteps: int | None) -> int:
        """The budget of a new run (``run_state['total_timesteps']``); checks it before anything runs."""
        raise NotImplementedError

    def planned_total(self, run: dict[str, Any]) -> int | None:
        """The env steps at which the run will end, for the progress bar (None: not known in advance)."""
        raise NotImplementedError

    def budget_left(self, run: dict[str, Any], elapsed: float) -> bool:
        """Whether another iteration runs (checked at the top of each, as both originals do)."""
        raise NotImplementedError

    def schedule(self, run: dict[str, Any]) -> UpdateSchedule:
        """This update's learning rate and clip ranges, before its rollout (spec §7)."""
        raise NotImplementedError

    def count(self, run: dict[str, Any], episodes: list[tuple[float, int]]) -> None:
        """Advance the trainer's own counters by this iteration's episodes of every rank (row 10)."""
        raise NotImplementedError

    def log_row(self, logger: Logger, run: dict[str, Any], schedule: UpdateSchedule, batch, losses: dict[str, float],
                result, episodes_this_iteration: int, times: IterationTimes) -> None:
        """Record the trainer's keys with the original names (spec §9); the loop dumps the row."""
        raise NotImplementedError

    def progress_position(self) -> int:
        """Where the progress bar stands after an iteration."""
        return self.num_timesteps

    def runner_shape(self) -> tuple[int, str]:
        """(rollout length per env, vectorization) of this trainer's runner."""
        raise NotImplementedError

    # -- pieces of one iteration ---------------------------------------------------------------
    def _make_normalizer(self) -> VecNormalize | None:
        """Env-side VecNormalize (rows 16-17) when the semantics ask for it."""
        sem = self.semantics
        if sem.obs_norm != "env" and not sem.reward_norm:
            return None
        return VecNormalize(self.observation_space.shape, self.num_envs, norm_obs=sem.obs_norm == "env",
                            norm_reward=sem.reward_norm, gamma=VEC_NORMALIZE_GAMMA, reset_mode=sem.vecnorm_reset)

    def make_runner(self) -> Runner:
        """This process's envs, seeded from (seed, global env index, updates so far) — a resumed run
        continues with fresh episodes instead of replaying the first ones. One process's runner counts its
        episodes straight into ``self.tracker``; under MPI (and always for PPO1, whose tracker pools the
        ranks' episodes, spec §8) the runner has its own and the loop pools them."""
        n_steps, vectorization = self.runner_shape()
        separate = self.pools_rank_episodes or self.world_size > 1
        tracker = EpisodeTracker(self.num_envs) if separate else self.tracker
        venv = make_vec_env(self.env_source, self.num_envs, vectorization=vectorization)
        first_obs = seed_vec_env(venv, self.seeds.envs(self.first_env_index, self.num_envs, restart=self.n_updates))
        actor = RecurrentState(self.actor, self.num_envs) if self.recurrent else self.actor
        return Runner(venv, actor, self.policy.dist, n_steps=n_steps, semantics=self.semantics,
                      gamma=self.config.gamma, rng=PerRowGenerators(self.action_rngs), tracker=tracker,
                      normalizer=self.normalizer, first_obs=first_obs)

    def restart_envs(self) -> None:
        """Re-seed this process's envs as `make_runner` would now: called at every periodic checkpoint
        boundary, so a run resumed from that checkpoint sees the same episodes (`tfppo.training.run_control`)."""
        seeds = self.seeds.envs(self.first_env_index, self.num_envs, restart=self.n_updates)
        self.runner.restart(seed_vec_env(self.runner.venv, seeds))

    def begin_run(self, total_timesteps: int) -> dict[str, Any]:
        """The run a ``learn`` call performs: an interrupted run loaded from a periodic checkpoint is resumed
        to its own budget; otherwise a new budget of ``total_timesteps`` starts from the current counters."""
        if self.pending_resume is not None:
            self.run_state = dict(self.pending_resume)
            self.resume_point = (int(self.run_state.get("rows", 0)), self.num_timesteps)
        else:
            self.run_state = {"total_timesteps": int(total_timesteps), "updates_before": self.n_updates,
                              "start_timesteps": self.num_timesteps, "counted": 0, "rows": 0, "complete": False}
            self.resume_point = None
        self.pending_resume = None
        return self.run_state

    def run_control(self, logger, save_path: str | os.PathLike | None, save_freq: int, keep_checkpoints: int):
        """Checkpoints, signals, NaN guard and health diagnostics of one learn() (`tfppo.training.run_control`)."""
        from tfppo.training.run_control import RunControl
        return RunControl(self, logger, save_path=save_path, save_freq=save_freq, keep_checkpoints=keep_checkpoints,
                          comm=getattr(self, "comm", None))

    def clip_ranges(self, clip: float, lr_multiplier: float, frac: float) -> tuple[float, float | None]:
        """ε and ε_v of this update. Row 9: ε·lrmult when ``clip_anneal_with_lr``; row 7 / spec §6.2:
        ε_v = ε ("cliprange"), cliprange_vf(frac) ("separate") or no value clipping ("off")."""
        if self.semantics.clip_anneal_with_lr:
            clip *= lr_multiplier
        mode = self.semantics.value_clip
        clip_vf = clip if mode == "cliprange" else self.config.cliprange_vf(frac) if mode == "separate" else None
        return clip, clip_vf

    def update_policy_obs_stats(self, rollout: Rollout, comm=None) -> None:
        """[B] MlpPolicy (row 16): after GAE, before old ← new, from every rank's observations (spec §5.1)."""
        if self.obs_stats is None:
            return
        obs = rollout.obs.reshape(-1, *self.policy.obs_mean.shape).astype(np.float64)
        self.obs_stats.update_mpi(obs, comm)
        self.policy.obs_mean.assign(self.obs_stats.mean.astype(np.float32))
        self.policy.obs_std.assign(np.maximum(np.sqrt(self.obs_stats.var), POLICY_OBS_MIN_STD).astype(np.float32))

    def penalty_step(self, logger, result, comm=None) -> None:
        """PPO-Penalty bookkeeping after an update (``policy_loss`` other than clip): log the β this update
        used, then, for ``kl_penalty``, adapt β on d = mean KL(old‖updated) averaged over MPI ranks, so every
        rank keeps the same β."""
        if self.semantics.policy_loss == "clip":
            return
        logger.record("kl_beta", self.learner.kl_beta)
        if self.semantics.policy_loss == "kl_penalty":
            kl = result.final_kl if comm is None else mpi.mean_over_ranks({"kl": result.final_kl}, comm)["kl"]
            logger.record("kl_final", kl)
            self.learner.adapt_kl_beta(kl)

    def make_logger(self, total_timesteps: int | None) -> Logger:
        """This learn()'s logger: rank 0 writes, a resumed run continues its files, names per ``log_keys``."""
        return Logger(self.log_dir, stdout=self.verbose > 0, enabled=self.rank == 0, total_timesteps=total_timesteps,
                      resume=self.resume_point, key_map=log_keys_module.key_map(self.algo, self.log_keys),
                      log_interval=self.log_interval)

    def start_evaluation(self, eval_freq: int, eval_episodes: int) -> None:
        """Deterministic evaluation every ``eval_freq`` env steps on a separate env (rank 0 only),
        written to ``log_dir/evaluations.csv``; 0 turns it off. Evaluates once before training; a resumed run
        continues the file from its checkpoint instead."""
        if eval_freq > 0:
            self.env_source.check_separate("eval_freq")
        self.evaluator = PeriodicEvaluator(eval_freq if self.rank == 0 else 0, eval_episodes, self.log_dir,
                                           self.config.seed)
        if self.num_timesteps == 0:
            self.evaluator.maybe_evaluate(self, 0)
        elif self.evaluator.enabled:  # resumed or continued: the rows up to this point are already written
            self.evaluator.resume(self.num_timesteps)

    # -- user-facing -------------------------------------------------------------------------
    def predict(self, obs: Any, deterministic: bool = True, episode_start: Any = None) -> np.ndarray:
        """Action(s) for one observation or a batch; env-side statistics are used frozen. A recurrent
        policy carries its LSTM state from call to call (one per row; zero at first, after `reset_state`
        and when the batch size changes); ``episode_start`` (bool, or one per row) resets it where an
        episode begins, as the masks do in training."""
        obs = np.asarray(obs)
        single = obs.shape == self.observation_space.shape
        batch = obs[None] if single else obs
        if self.normalizer is not None:
            batch = self.normalizer.normalize_obs(batch, update=False)
        if not self.recurrent:
            actions, _, _ = act(self.actor, self.policy.dist, batch, self.predict_rng, deterministic)
            return actions[0] if single else actions
        if self.predict_state is None or len(self.predict_state.state) != len(batch):
            self.predict_state = RecurrentState(self.actor, len(batch))
        starts = np.broadcast_to(np.asarray(False if episode_start is None else episode_start), (len(batch),))
        self.predict_state.begin_step(starts)
        actions, _, _ = act(self.predict_state, self.policy.dist, batch, self.predict_rng, deterministic)
        self.predict_state.advance()
        return actions[0] if single else actions

    def reset_state(self) -> None:
        """Forget ``predict``'s LSTM state (a recurrent policy's next call starts from zero state)."""
        self.predict_state = None

    def export(self, path: str | os.PathLike, format: str = "saved_model") -> Path:
        """Write the policy as ``format`` (saved_model, onnx, litert) for use without tfppo: raw observations
        to env actions, normalisation statistics frozen and action clipping folded in (`tfppo.training.export`)."""
        from tfppo.training.export import export_policy
        return export_policy(self, path, format)

    def close(self) -> None:
        """Close the envs (they are rebuilt by the next ``learn``)."""
        if self.runner is not None:
            self.runner.venv.close()
            self.runner = None

    def write_run_header(self) -> None:
        """Print the resolved Semantics and save it as ``semantics.json`` in the run directory."""
        if self.verbose > 0:
            print(f"{self.algo} semantics: {self.semantics.to_dict()}", flush=True)
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            write_text(self.log_dir / "semantics.json", self.semantics.to_json())

    def rng_states(self) -> dict[str, Any]:
        return {"actions": [rng.bit_generator.state for rng in self.action_rngs],
                "shuffles": self.shuffle_rng.bit_generator.state}

    def load_rng_states(self, states: dict[str, Any]) -> None:
        """This rank's streams; a checkpoint written by a different number of ranks keeps the fresh ones."""
        if "ranks" in states:
            if len(states["ranks"]) != self.world_size:
                return
            states = states["ranks"][self.rank]
        for rng, state in zip(self.action_rngs, states["actions"]):
            rng.bit_generator.state = state
        self.shuffle_rng.bit_generator.state = states["shuffles"]

    def save(self, path: str | os.PathLike) -> Path | None:
        """Write an atomic checkpoint directory (see `tfppo.training.checkpoint`). Collective under MPI: every rank's
        RNG states are gathered and rank 0 writes (the other ranks return None)."""
        rng = self.rng_states()
        if self.rng_per_rank or self.world_size > 1:
            rng = {"ranks": self.comm.gather(rng, root=0)}
        if self.rank != 0:
            return None
        return checkpoint.save(path, self.policy, self.learner.optimizer, self.checkpoint_meta(rng))

    def checkpoint_meta(self, rng: dict[str, Any]) -> dict[str, Any]:
        return {
            "algo": self.algo,
            "config": self.config.to_dict(),
            "env": self.env_source.description(),
            "semantics": self.semantics.to_dict(),
            "normalizer": self.normalizer.state_dict() if self.normalizer is not None else None,
            "tracker": self.tracker.state_dict(),
            "counters": {"num_timesteps": self.num_timesteps, "n_updates": self.n_updates},
            "rng": rng,
            "obs_stats": self.obs_stats.state_dict() if self.obs_stats is not None else None,
            "kl_beta": self.learner.kl_beta,
            "extra": self.extra_state(),
            "run": self.run_state,
        }

    def restore(self, path: str | os.PathLike, meta: dict[str, Any]) -> None:
        """Load weights, optimizer, statistics, counters and RNG states from a checkpoint (an LSTM state is
        not saved: a loaded recurrent agent starts from zero state)."""
        checkpoint.restore_weights(path, self.policy, self.learner.optimizer)
        self.actor.sync()
        self.reset_state()
        if self.normalizer is not None and meta.get("normalizer"):
            self.normalizer.load_state_dict(meta["normalizer"])
        if self.obs_stats is not None and meta.get("obs_stats"):
            self.obs_stats.load_state_dict(meta["obs_stats"])
        self.tracker.load_state_dict(meta["tracker"])
        self.num_timesteps = int(meta["counters"]["num_timesteps"])
        self.n_updates = int(meta["counters"]["n_updates"])
        self.load_rng_states(meta["rng"])
        self.learner.kl_beta = float(meta.get("kl_beta", self.semantics.kl_beta))
        self.load_extra_state(meta.get("extra") or {})
        run = meta.get("run") or {}
        self.pending_resume = dict(run) if run and not run.get("complete", True) else None

    def extra_state(self) -> dict[str, Any]:
        """Trainer-specific JSON state for checkpoints (PPO1: its counters)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Inverse of `extra_state`."""

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, meta: dict[str, Any], **kwargs: Any) -> "Algorithm":
        """Rebuild the agent from ``agent.json`` (config + Semantics), then load its state. The env is the
        recorded id and env_kwargs unless ``env``, ``env_kwargs`` or ``wrappers`` are given; a callable, an
        instance, wrappers and env_kwargs JSON cannot hold are recorded by name only, so they must be given."""
        config = cls.config_class.from_dict(meta["config"]).to_dict()
        label, preset = config.pop("env"), config.pop("preset")
        recorded = meta.get("env") or {"kind": "id", "env_kwargs": {}, "env_kwargs_exact": True, "wrappers": []}
        if "env" not in kwargs:
            if recorded["kind"] != "id":
                raise ConfigError(f"checkpoint {str(path)!r} was trained on {label}, which a checkpoint cannot "
                                  f"hold; pass it again: tfppo.load(path, env=...)")
            kwargs["env"] = label
        if recorded["env_kwargs_exact"]:
            kwargs.setdefault("env_kwargs", recorded["env_kwargs"] or None)
        elif "env_kwargs" not in kwargs:
            raise ConfigError(f"checkpoint {str(path)!r} was trained with env_kwargs {recorded['env_kwargs']}, which "
                              f"a checkpoint cannot hold; pass them again: tfppo.load(path, env_kwargs={{...}})")
        if recorded["wrappers"] and "wrappers" not in kwargs:
            raise ConfigError(f"checkpoint {str(path)!r} was trained with wrappers {recorded['wrappers']}, which a "
                              f"checkpoint cannot hold; pass them again: tfppo.load(path, wrappers=[...])")
        agent = cls(preset=preset, semantics=Semantics.from_dict(meta["semantics"]), **kwargs, **config)
        agent.restore(path, meta)
        return agent
