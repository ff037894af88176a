"""``tfppo.callbacks``: what ``learn(callback=...)`` takes (defined in `tfppo.training.callbacks`)."""
from tfppo.training.callbacks import (BaseCallback, CallbackList, EveryNTimesteps, FunctionCallback,
                                      StopTrainingOnRewardThreshold)

__all__ = ["BaseCallback", "CallbackList", "EveryNTimesteps", "FunctionCallback", "StopTrainingOnRewardThreshold"]
