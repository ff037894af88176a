"""Callbacks: user code the one training loop (`tfppo.training.algorithm.Algorithm.learn`) calls at fixed points.

A callback sees the agent, its step counter and the row the logger wrote for the update just finished, and
can end training after that update. Stopping is not an interruption: the loop leaves after the current
update, and the final evaluation and the final checkpoint still happen, so a stopped run's files are those of
a run whose budget happened to end there.

Order of the hooks in one ``learn`` call::

    on_training_start()                     after the envs are built and the first evaluation ran
    per update: on_rollout_end()            rollout and GAE done, before the update
                on_update_end() -> bool     after the row is logged and any evaluation; False stops
    on_training_end()                       after the final evaluation and checkpoint, logs closed

Under MPI every rank runs its own callbacks, but only rank 0's ``on_update_end`` decides: its answer is
broadcast, so all ranks leave the loop after the same update (the other ranks' rows are empty: only rank 0
logs). Periodic evaluation and checkpoints are the loop's own (``eval_freq``, ``save_freq``), not callbacks.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tfppo.io.log_keys import find_key
from tfppo.util.errors import ConfigError


class BaseCallback:
    """Override any of the four ``on_*`` hooks. ``self.agent`` (also ``self.model``, as in Stable-Baselines3) is
    the PPO1/PPO2 agent, ``self.num_timesteps`` its env steps so far (all ranks), ``self.last_row`` the row the
    logger wrote at the end of the latest update (``{}`` before the first, and on MPI ranks other than 0), under
    the names of the run's log-key style, and ``self.locals`` the loop's values of the current update
    (``schedule``, ``rollout``, ``batch``, and the learner's ``result``, which is None until ``on_update_end``)."""

    def __init__(self) -> None:
        self.agent: Any = None
        self.last_row: dict[str, float | int] = {}
        self.locals: dict[str, Any] = {}

    @property
    def model(self) -> Any:
        """The agent (Stable-Baselines3's name for it); the Keras network is ``self.agent.model``."""
        return self.agent

    @property
    def num_timesteps(self) -> int:
        return self.agent.num_timesteps

    # -- what the loop calls to share its state (composite callbacks pass it on) --------------
    def children(self) -> Sequence[BaseCallback]:
        """The callbacks this one drives (a `CallbackList`'s items, an `EveryNTimesteps`'s callback)."""
        return ()

    def init_callback(self, agent: Any) -> None:
        """Bind to the agent at the start of ``learn`` (forgetting an earlier ``learn``'s row)."""
        self.agent = agent
        self.last_row = {}
        self.locals = {}
        for child in self.children():
            child.init_callback(agent)

    def update_state(self, *, last_row: dict[str, float | int] | None = None, **loop_locals: Any) -> None:
        """The loop's new values, before the hook that may read them."""
        if last_row is not None:
            self.last_row = last_row
        self.locals.update(loop_locals)
        for child in self.children():
            child.update_state(last_row=last_row, **loop_locals)

    # -- the hooks ----------------------------------------------------------------------------
    def on_training_start(self) -> None:
        """Once per ``learn``, before the first update."""

    def on_rollout_end(self) -> None:
        """After each rollout (advantages computed), before the update uses it."""

    def on_update_end(self) -> bool:
        """After each update's log row (and evaluation, if one was due); return False to stop training."""
        return True

    def on_training_end(self) -> None:
        """Once per ``learn`` that ends normally (budget spent or stopped), after the final checkpoint."""


def wants_stop(answer: Any) -> bool:
    """A hook's answer: False (or another falsy value but None) stops; None, a hook that returns nothing,
    continues, so a callback written only for its side effects never ends training by accident."""
    return answer is not None and not answer


class CallbackList(BaseCallback):
    """Several callbacks, called in order at every hook; training stops when any of them says so (all of
    them still see that update)."""

    def __init__(self, callbacks: Iterable[BaseCallback]):
        super().__init__()
        self.callbacks = list(callbacks)

    def children(self) -> Sequence[BaseCallback]:
        return self.callbacks

    def on_training_start(self) -> None:
        for callback in self.callbacks:
            callback.on_training_start()

    def on_rollout_end(self) -> None:
        for callback in self.callbacks:
            callback.on_rollout_end()

    def on_update_end(self) -> bool:
        answers = [callback.on_update_end() for callback in self.callbacks]
        return not any(wants_stop(answer) for answer in answers)

    def on_training_end(self) -> None:
        for callback in self.callbacks:
            callback.on_training_end()


class EveryNTimesteps(BaseCallback):
    """Calls ``callback.on_update_end`` at the first update boundary past each multiple of ``n`` env steps (the
    rule of ``eval_freq`` and ``save_freq``, so it does not drift when ``n`` is not a multiple of the update
    size); its answer can stop training. ``on_training_start`` and ``on_training_end`` are passed on."""

    def __init__(self, n: int, callback: BaseCallback):
        super().__init__()
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"EveryNTimesteps n must be a positive integer, got {n!r}")
        self.n = n
        self.callback = as_callback(callback)
        self._bucket = 0

    def children(self) -> Sequence[BaseCallback]:
        return (self.callback,)

    def on_training_start(self) -> None:
        self._bucket = self.num_timesteps // self.n  # a continued run counts from where it stands
        self.callback.on_training_start()

    def on_update_end(self) -> bool:
        bucket = self.num_timesteps // self.n
        if bucket <= self._bucket:
            return True
        self._bucket = bucket
        return not wants_stop(self.callback.on_update_end())

    def on_training_end(self) -> None:
        self.callback.on_training_end()


class StopTrainingOnRewardThreshold(BaseCallback):
    """Stops once the logged mean training return (PPO2's ``ep_reward_mean``, PPO1's ``EpRewMean``, [B]'s
    ``eprewmean``: the episode window of the log row) reaches ``threshold``. A row without it (no episode
    finished yet) or with NaN never stops."""

    def __init__(self, threshold: float, verbose: int = 1):
        super().__init__()
        self.threshold = float(threshold)
        self.verbose = verbose

    def on_update_end(self) -> bool:
        key = find_key(self.last_row, "train_return")
        value = self.last_row[key] if key is not None else float("nan")
        if not value >= self.threshold:  # NaN compares False: keep going
            return True
        if self.verbose > 0:
            print(f"Stopping training: {key} {value:.2f} >= {self.threshold:g} at {self.num_timesteps} steps",
                  flush=True)
        return False


class FunctionCallback(BaseCallback):
    """A plain callable as a callback: ``fn(callback)`` after each update, with this object as the argument
    (``.agent``, ``.num_timesteps``, ``.last_row``, ``.locals``); returning False stops, None continues."""

    def __init__(self, fn: Callable[[BaseCallback], bool | None]):
        super().__init__()
        self.fn = fn

    def on_update_end(self) -> bool:
        return not wants_stop(self.fn(self))


def as_callback(callback: Any) -> BaseCallback:
    """What ``learn(callback=...)`` accepts, as one callback: None, a `BaseCallback`, a list or tuple of
    them (or of callables), or a callable."""
    if callback is None:
        return CallbackList([])
    if isinstance(callback, BaseCallback):
        return callback
    if isinstance(callback, (list, tuple)):
        return CallbackList([as_callback(item) for item in callback])
    if callable(callback):
        return FunctionCallback(callback)
    raise ConfigError(f"callback must be a tfppo.callbacks.BaseCallback, a list of them or a callable; "
                      f"got {type(callback).__name__}")
