"""The one training loop (`algorithm`) and what runs around it: PPO1 and PPO2 as small classes of hooks,
MPI, evaluation, checkpoints, signals, the NaN guard and health diagnostics."""
