"""Environments: lookup and vector envs (`factory`), the spaces the policies take (`spaces`),
episode bookkeeping (`episodes`) and VecNormalize (`normalize`). NumPy and gymnasium only."""
