"""Under mpirun -n 2: each rank's gradient on its own batch, averaged by GradientAverager.

Writes OUT/rank{r}.npz with the local and the averaged flat gradient.
"""
import sys

import numpy as np

from tests.mpi_scripts.common import gradient_of_batch, make_batch, make_learner
from tfppo.training import mpi

out = sys.argv[1]
comm = mpi.world()
rank = comm.Get_rank()
learner = make_learner()
local = gradient_of_batch(learner, make_batch(rank))
averaged = mpi.GradientAverager(comm)(local, np.concatenate([v.numpy().ravel() for v in learner.model.trainable_variables]))
np.savez(f"{out}/rank{rank}.npz", local=local, averaged=averaged)
