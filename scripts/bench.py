#!/usr/bin/env python
"""tfppo against Stable-Baselines3 PPO, side by side, in one command (`make bench`).

Every measurement runs in its own child process of this one (one process tree),
and the two libraries alternate run by run (A B, then B A, ...): these 2-core
machines drift by 2x from hour to hour, so only ratios of runs made next to
each other mean anything. Each tfppo/SB3 pair gives one ratio; the table shows
the median of those ratios beside the median env-steps/s of each side.

Measured per run (learn() only, the agent built beforehand, as SB3 users time it):
env-steps/s over the whole learn() (so including tfppo's one-time trace and XLA
compile, shown apart as "first update", cold and from the persistent XLA cache), the median rollout-only and update-only
seconds of one iteration, and the process's peak RSS. Besides: start-up time of
`scripts/ppo2.py` to its first env step against `python -c "import tensorflow"`,
PPO1 total env-steps/s under `mpirun -n 2` against one worker, and RSS growth of a
1M-step PPO2 run between 100k and 1M steps.

Same settings on both sides: 2x64 tanh separate towers, orthogonal init, Adam
lr 3e-4 (eps 1e-5), 10 epochs of 64-sample minibatches, gamma 0.99, GAE 0.95, clip 0.2,
no value clipping, entropy 0, vf_coef 0.5, grad-norm clip 0.5, one thread each (torch
with 2 threads on 2 busy cores runs several times slower, so SB3 gets its faster setting).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata, util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent

# name -> env, envs x steps per iteration, the tfppo variants compared with SB3 on the same envs, and the
# default learn() length: CartPole 50 iterations = 102,400 steps (rl-zoo's CartPole budget is 1e5), the slower
# envs fewer so one `make bench` stays near 20 minutes on 2 cores (--iterations sets all of them).
CONFIGS: dict[str, dict[str, Any]] = {
    "cartpole-8x256": dict(env="CartPole-v1", num_envs=8, n_steps=256, variants=("ppo2",), iterations=50),
    "cartpole-1x2048": dict(env="CartPole-v1", num_envs=1, n_steps=2048, variants=("ppo1", "ppo2"), iterations=50),
    "pendulum-1x2048": dict(env="Pendulum-v1", num_envs=1, n_steps=2048, variants=("ppo2",), iterations=25),
    "hopper-1x2048": dict(env="Hopper-v5", num_envs=1, n_steps=2048, variants=("ppo2",), iterations=15),
}
MINIBATCH, EPOCHS = 64, 10
VARIANT_LABEL = {"ppo1": "tfppo PPO1 (1 worker)", "ppo2": "tfppo PPO2", "sb3": "SB3 PPO"}


# ----------------------------------------------------------------------------- children
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _tfppo_agent(spec: dict[str, Any]):
    """The agent of one tfppo run (imports TF: children only)."""
    from tfppo.util.device import configure_tensorflow

    configure_tensorflow(threads=spec["threads"])
    import tfppo

    batch = spec["num_envs"] * spec["n_steps"]
    minibatch, epochs = spec.get("minibatch", MINIBATCH), spec.get("epochs", EPOCHS)
    common = dict(seed=0, verbose=0, xla=spec.get("xla", True))
    if spec["algo"] == "ppo1":
        return tfppo.PPO1(spec["env"], preset="sb-ppo1", timesteps_per_actorbatch=spec["n_steps"], clip_param=0.2,
                          entcoeff=0.0, optim_epochs=epochs, optim_stepsize=3e-4, optim_batchsize=minibatch,
                          gamma=0.99, lam=0.95, schedule="constant",
                          max_timesteps=spec["iterations"] * batch * spec.get("world", 1), **common)
    return tfppo.PPO2(spec["env"], preset="sb-ppo2", num_envs=spec["num_envs"], n_steps=spec["n_steps"],
                      nminibatches=batch // minibatch, noptepochs=epochs, learning_rate="3e-4", cliprange="0.2",
                      cliprange_vf="-1", ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, gamma=0.99, lam=0.95,
                      total_timesteps=spec["iterations"] * batch, **common)


def _timed(times: list[float], fn, ends: list[float] | None = None):
    """``fn`` that appends each call's seconds to ``times`` (and its end time to ``ends``)."""
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        now = time.perf_counter()
        times.append(now - start)
        if ends is not None:
            ends.append(now)
        return out
    return wrapper


def run_tfppo(spec: dict[str, Any]) -> dict[str, Any] | None:
    from tfppo.core import rollout

    agent = _tfppo_agent(spec)
    rollouts: list[float] = []
    updates: list[float] = []
    ends: list[float] = []
    rollout.Runner.run = _timed(rollouts, rollout.Runner.run)
    agent.learner.update = _timed(updates, agent.learner.update, ends)
    start = time.perf_counter()
    agent.learn()
    end = time.perf_counter()
    if getattr(agent, "rank", 0) != 0:
        return None
    per_update = agent.num_timesteps // len(updates)
    return dict(steps_per_s=agent.num_timesteps / (end - start), steady_steps_per_s=_steady(per_update, ends, end),
                rollout_s=statistics.median(rollouts[1:] or rollouts),
                update_s=statistics.median(updates[1:] or updates), first_update_s=updates[0],
                peak_rss_mb=_peak_rss_mb(), steps=agent.num_timesteps)


def _steady(steps_per_update: int, update_ends: list[float], end: float) -> float:
    """Env-steps/s after the first update (its trace and compile are a one-time cost): the steps of
    iterations 2..n over the time from the end of the first update to the end of learn()."""
    if len(update_ends) < 2:
        return float("nan")
    return steps_per_update * (len(update_ends) - 1) / (end - update_ends[0])


def run_sb3(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    import stable_baselines3 as sb3
    from stable_baselines3.common.env_util import make_vec_env

    from tfppo.envs.families import register_family  # MinAtar/...: registered on lookup, as tfppo does

    torch.set_num_threads(spec["threads"])
    register_family(spec["env"])
    venv = make_vec_env(spec["env"], n_envs=spec["num_envs"], seed=0)
    if spec.get("image"):  # MinAtar: SB3's NatureCNN cannot read 10x10, so tfppo's small CNN as an extractor
        policy, kwargs = "CnnPolicy", dict(features_extractor_class=_minatar_extractor(), normalize_images=False,
                                           net_arch=[])
    else:
        policy, kwargs = "MlpPolicy", dict(net_arch=dict(pi=[64, 64], vf=[64, 64]))
    model = sb3.PPO(policy, venv, n_steps=spec["n_steps"], batch_size=spec.get("minibatch", MINIBATCH),
                    n_epochs=spec.get("epochs", EPOCHS), learning_rate=3e-4, gamma=0.99, gae_lambda=0.95,
                    clip_range=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, policy_kwargs=kwargs,
                    device="cpu", seed=0, verbose=0)
    rollouts: list[float] = []
    updates: list[float] = []
    ends: list[float] = []
    model.collect_rollouts = _timed(rollouts, model.collect_rollouts)
    model.train = _timed(updates, model.train, ends)
    steps = spec["iterations"] * spec["num_envs"] * spec["n_steps"]
    start = time.perf_counter()
    model.learn(steps)
    end = time.perf_counter()
    return dict(steps_per_s=model.num_timesteps / (end - start),
                steady_steps_per_s=_steady(spec["num_envs"] * spec["n_steps"], ends, end),
                rollout_s=statistics.median(rollouts[1:] or rollouts),
                update_s=statistics.median(updates[1:] or updates), first_update_s=updates[0],
                peak_rss_mb=_peak_rss_mb(), steps=model.num_timesteps)


def _minatar_extractor():
    """SB3 features extractor equal to tfppo's MinAtar network: conv 16/3/1 VALID, ReLU, fc 128, ReLU, on
    10x10xC bool observations (HWC, cast to float; no /255)."""
    import torch
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class MinAtarCNN(BaseFeaturesExtractor):
        def __init__(self, observation_space, features_dim: int = 128):
            super().__init__(observation_space, features_dim)
            h, w, c = observation_space.shape
            self.net = torch.nn.Sequential(torch.nn.Conv2d(c, 16, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                           torch.nn.Linear(16 * (h - 2) * (w - 2), features_dim), torch.nn.ReLU())

        def forward(self, obs):
            return self.net(obs.float().permute(0, 3, 1, 2))

    return MinAtarCNN


def run_first_update(spec: dict[str, Any]) -> dict[str, Any]:
    """The first update of a PPO2 agent split in two, in CPU seconds (and wall): the trace
    (``get_concrete_function`` on the update's real inputs), then the first call — TF's lowering of the
    graph to HLO, which every process pays, plus either the XLA compile (empty cache) or loading the
    cached executable. ``spec['cache']`` is the persistent XLA cache the child reads and writes."""
    agent = _tfppo_agent(spec)
    runner = agent.make_runner()
    batch = runner.run().to_batch(0.99, 0.95)
    learner = agent.learner
    inputs = learner.update_inputs(batch, learning_rate=3e-4, clip=0.2, clip_vf=None, rng=agent.shuffle_rng)
    clock = lambda: (time.process_time(), time.perf_counter())
    t0 = clock()
    learner.compiled_update.get_concrete_function(*inputs)
    t1 = clock()
    [out.numpy() for out in learner.compiled_update(*inputs)]
    t2 = clock()
    [out.numpy() for out in learner.compiled_update(*inputs)]
    t3 = clock()
    return dict(trace_cpu=t1[0] - t0[0], trace_wall=t1[1] - t0[1], first_call_cpu=t2[0] - t1[0],
                first_call_wall=t2[1] - t1[1], later_call_cpu=t3[0] - t2[0])


def run_rollout(spec: dict[str, Any]) -> dict[str, Any]:
    """CPU µs per env step of the vector env alone (random actions, the same envs as the runner builds)
    against tfppo's whole rollout (acting, env, bookkeeping), interleaved in this one process; for an image
    policy also the rollout acting through the compiled TF call (`CompiledActor`) instead of NumPy."""
    import numpy as np
    from tfppo.core.acting import CompiledActor, NumpyActor
    from tfppo.envs.factory import make_vec_env

    agent = _tfppo_agent(spec)
    runner = agent.make_runner()
    n, t = spec["num_envs"], spec["n_steps"]
    venv = make_vec_env(spec["env"], n)
    venv.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, venv.single_action_space.n, size=(t, n))
    numpy_actor = runner.actor
    compiled_actor = CompiledActor(agent.policy) if agent.policy.is_image else None

    def env_only() -> None:
        for step in range(t):
            venv.step(actions[step])

    def rollout_with(actor):
        def run() -> None:
            runner.actor = actor
            runner.run()
        return run

    cases = {"env": env_only, "rollout": rollout_with(numpy_actor)}
    if compiled_actor is not None:
        cases["rollout_compiled"] = rollout_with(compiled_actor)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(spec["repeats"]):
        for name, fn in cases.items():
            start = time.process_time()
            fn()
            times[name].append((time.process_time() - start) / (n * t) * 1e6)
    result = {name: statistics.median(values) for name, values in times.items()}
    result["actor"] = "NumPy" if isinstance(numpy_actor, NumpyActor) else "compiled TF"
    return result


def run_rss(spec: dict[str, Any]) -> dict[str, Any]:
    """Resident memory of a long PPO2 run after the update that crosses each mark."""
    agent = _tfppo_agent(spec)
    marks = sorted(spec["marks"])
    seen: dict[int, float] = {}
    update = agent.learner.update

    def recording(*args, **kwargs):
        out = update(*args, **kwargs)
        done = agent.num_timesteps + spec["num_envs"] * spec["n_steps"]  # counted after update returns
        for mark in marks:
            if mark not in seen and done >= mark:
                seen[mark] = _current_rss_mb()
        return out

    agent.learner.update = recording
    agent.learn()
    seen[agent.num_timesteps] = _current_rss_mb()  # and at the very end
    return {"rss_mb": {str(k): v for k, v in seen.items()}, "steps": agent.num_timesteps}


def __getattr__(name: str):
    """``bench:FirstStepCartPole`` for the start-up measurement: CartPole that, on its first step, prints
    the wall-clock time and ends the process (built lazily: the parent never imports gymnasium)."""
    if name != "FirstStepCartPole":
        raise AttributeError(name)
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv

    class FirstStepCartPole(CartPoleEnv):
        def step(self, action):
            sys.stdout.write(f"FIRST_STEP {time.time():.6f}\n")
            sys.stdout.flush()
            os._exit(0)

    return FirstStepCartPole


def child_main(spec: dict[str, Any]) -> int:
    runner = {"tfppo": run_tfppo, "sb3": run_sb3, "rss": run_rss, "first_update": run_first_update,
              "rollout": run_rollout}[spec["lib"]]
    result = runner(spec)
    if result is not None:
        print("RESULT " + json.dumps(result), flush=True)
    return 0


# ----------------------------------------------------------------------------- parent
def child_env(threads: int, xla_cache: str | None = None) -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join([str(ROOT), str(SCRIPTS), os.environ.get("PYTHONPATH", "")]))
    if xla_cache is not None:
        env["TFPPO_XLA_CACHE"] = xla_cache
    return env


def run_child(spec: dict[str, Any], world: int = 1) -> dict[str, Any]:
    """One measurement in a fresh process (under `mpirun -n world` for PPO1 with several workers)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    if world > 1:
        mpirun = shutil.which("mpirun", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                               os.environ.get("PATH", "")]))
        cmd = [mpirun, "-n", str(world), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(spec["threads"], spec.get("cache")),
                          cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"bench child {spec.get('lib')}/{spec.get('algo')} on {spec.get('env')} failed: "
                           + " | ".join(tail))
    return json.loads(lines[-1][len("RESULT "):])


def time_to_marker(cmd: list[str], threads: int) -> float:
    """Seconds from launching ``cmd`` to its FIRST_STEP line, or to its exit when it prints none."""
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(threads), cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith("FIRST_STEP "):
            return float(line.split()[1]) - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return time.time() - start


@dataclass
class Row:
    """All repeats of one implementation on one configuration."""

    config: str
    impl: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    def median(self, key: str) -> float:
        return statistics.median(run[key] for run in self.runs)


def paired_ratio(numerators: list[float], denominators: list[float]) -> float:
    """Median over interleaved pairs of numerator/denominator (drift cancels within a pair)."""
    if len(numerators) != len(denominators) or not numerators:
        raise ValueError("paired_ratio needs two equally long, non-empty lists")
    return statistics.median(a / b for a, b in zip(numerators, denominators))


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def first_update_cell(row: Row) -> str:
    """The first run's first update (tfppo: compiled into the bench's empty XLA cache), then the median of
    the later runs' (tfppo: the cached executable, as every later run of a configuration on a machine)."""
    firsts = [run["first_update_s"] for run in row.runs]
    return f"{firsts[0]:.2f}" + (f" / {statistics.median(firsts[1:]):.2f}" if len(firsts) > 1 else "")


def speed_table(rows: list[Row], have_sb3: bool) -> str:
    header = ["config", "implementation", "env-steps/s (median)", "× SB3 (median of pairs)", "rollout s/iter",
              "update s/iter", "first update s (cold / warm)", "peak RSS MB", "runs"]
    out = []
    for row in rows:
        ratio = "—"
        sb3 = next((r for r in rows if r.config == row.config and r.impl == "sb3"), None)
        if have_sb3 and row.impl != "sb3" and sb3 is not None:
            ratio = f"**{paired_ratio([r['steps_per_s'] for r in row.runs], [r['steps_per_s'] for r in sb3.runs]):.1f}×**"
        out.append([row.config, VARIANT_LABEL[row.impl], f"{row.median('steps_per_s'):,.0f}", ratio,
                    f"{row.median('rollout_s'):.3f}", f"{row.median('update_s'):.3f}",
                    first_update_cell(row), f"{row.median('peak_rss_mb'):,.0f}", str(len(row.runs))])
    return markdown_table(header, out)


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = []
    for pkg in ("tensorflow", "stable-baselines3", "torch", "gymnasium", "mujoco"):
        try:
            versions.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {', '.join(versions)}; "
            f"load average {os.getloadavg()[0]:.2f} at start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help=f"comma-separated subset of {', '.join(CONFIGS)}")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per configuration (>= 3)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="iterations (batches) per learn() for every config (default: each config's own)")
    parser.add_argument("--threads", type=int, default=1, help="TF and torch threads of each run")
    parser.add_argument("--rss_steps", type=int, default=1_000_000,
                        help="length of the RSS-growth run (PPO2 CartPole 8x256); 0 skips it")
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated parts to run, of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--scaling_envs", default="1,8,32,128",
                        help="CartPole env counts of the scaling table (each with about 2048 steps per iteration)")
    parser.add_argument("--no_startup", action="store_true", help="skip the start-up measurement")
    parser.add_argument("--no_mpi", action="store_true", help="skip the mpirun -n 2 scaling measurement")
    parser.add_argument("--mpi_no_xla", action="store_true", help="PPO1 scaling with --xla off")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(json.loads(args.child))
    configs = [c for c in args.configs.split(",") if c]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.exit(2, f"bench.py: error: --configs {unknown[0]!r} is unknown; allowed: {', '.join(CONFIGS)}\n")
    parts = [p for p in args.only.split(",") if p]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.exit(2, f"bench.py: error: --only {unknown[0]!r} is unknown; allowed: {', '.join(PARTS)}\n")
    try:
        args.scaling_envs = [int(n) for n in args.scaling_envs.split(",") if n]
    except ValueError:
        args.scaling_envs = [0]
    if not args.scaling_envs or min(args.scaling_envs) < 1:
        parser.exit(2, "bench.py: error: --scaling_envs takes positive integers, e.g. 1,8,32,128\n")
    if "compare" not in parts:
        configs = []
    if args.repeats < 1 or (args.iterations is not None and args.iterations < 2) or args.threads < 1 \
            or args.rss_steps < 0:
        parser.exit(2, "bench.py: error: --repeats >= 1, --iterations >= 2, --threads >= 1, --rss_steps >= 0\n")

    have_sb3 = util.find_spec("stable_baselines3") is not None and util.find_spec("torch") is not None
    if not have_sb3:
        print("Stable-Baselines3 is not installed (pip install -e '.[bench]'): measuring tfppo alone.")
    if "hopper-1x2048" in configs and util.find_spec("mujoco") is None:
        print("mujoco is not installed (pip install -e '.[bench]'): Hopper-v5 skipped.")
        configs.remove("hopper-1x2048")
    print(f"Machine: {machine_line()}", flush=True)
    # An empty persistent XLA cache for this bench (tfppo.util.device): each configuration's first tfppo run
    # compiles its update, the later ones load it — the table shows both.
    os.environ["TFPPO_XLA_CACHE"] = tempfile.mkdtemp(prefix="tfppo-bench-xla-")  # read by the children

    rows: list[Row] = []
    for repeat in range(args.repeats):
        for name in configs:
            cfg = CONFIGS[name]
            impls = [*cfg["variants"], *(["sb3"] if have_sb3 else [])]
            if repeat % 2:
                impls.reverse()  # A B, B A, ...: a drift within a pair does not always favour one side
            for impl in impls:
                spec = dict(lib="sb3" if impl == "sb3" else "tfppo", algo=impl, env=cfg["env"],
                            num_envs=cfg["num_envs"], n_steps=cfg["n_steps"],
                            iterations=args.iterations or cfg["iterations"],
                            threads=args.threads)
                result = run_child(spec)
                row = next((r for r in rows if r.config == name and r.impl == impl), None)
                if row is None:
                    row = Row(name, impl)
                    rows.append(row)
                row.runs.append(result)
                print(f"  [{repeat + 1}/{args.repeats}] {name:16s} {VARIANT_LABEL[impl]:22s} "
                      f"{result['steps_per_s']:9,.0f} env-steps/s", flush=True)

    extra = []
    if "first_update" in parts:
        extra.append(measure_first_update(args))
    if "rollout" in parts:
        extra.append(measure_rollout(args))
    if "scaling" in parts:
        extra.append(measure_scaling(args, have_sb3))
    if "mpi" in parts and not args.no_mpi:
        extra.append(measure_mpi_scaling(args))
    if "startup" in parts and not args.no_startup:
        extra.append(measure_startup(args))
    if "rss" in parts and args.rss_steps:
        extra.append(measure_rss(args))
    print()
    print(f"Machine: {machine_line()}")
    if rows:
        lengths = ", ".join(f"{name} {args.iterations or CONFIGS[name]['iterations']}" for name in configs)
        print(f"learn() iterations per run: {lengths}; {args.repeats} interleaved repeats; "
              f"{args.threads} thread(s) per run\n")
        print(speed_table(rows, have_sb3))
    for block in extra:
        print()
        print(block)
    return 0


PARTS = ("compare", "first_update", "rollout", "scaling", "mpi", "startup", "rss")
# The first-update measurement: the MLPs of the SB3 comparison, each as its configuration builds it.
FIRST_UPDATE_CONFIGS = ("cartpole-8x256", "hopper-1x2048")


def measure_first_update(args) -> str:
    """Trace and first call of the update, CPU seconds, for each MLP configuration: the first run into an
    empty XLA cache (cold: lowering + XLA compile), then ``--repeats`` runs that load it (warm: lowering +
    load), each in a fresh process as every run of a suite is."""
    rows = []
    for name in FIRST_UPDATE_CONFIGS:
        cfg = CONFIGS[name]
        if cfg["env"].startswith("Hopper") and util.find_spec("mujoco") is None:
            continue
        cache = tempfile.mkdtemp(prefix="tfppo-bench-first-")
        spec = dict(lib="first_update", algo="ppo2", env=cfg["env"], num_envs=cfg["num_envs"], n_steps=cfg["n_steps"],
                    iterations=1, threads=args.threads, cache=cache)
        runs = [run_child(spec) for _ in range(1 + args.repeats)]
        shutil.rmtree(cache, ignore_errors=True)
        for label, group in (("cold", runs[:1]), ("warm", runs[1:])):
            med = lambda key: statistics.median(r[key] for r in group)
            rows.append([name, label, f"{med('trace_cpu'):.2f}", f"{med('first_call_cpu'):.2f}",
                         f"**{med('trace_cpu') + med('first_call_cpu'):.2f}**",
                         f"{med('trace_wall') + med('first_call_wall'):.2f}", f"{med('later_call_cpu'):.3f}",
                         str(len(group))])
        print(f"  first update {name}: cold {rows[-2][4]}, warm {rows[-1][4]} CPU s", flush=True)
    return ("First update (CPU seconds; cold: empty XLA cache, warm: the cache holds the configuration)\n\n"
            + markdown_table(["config", "cache", "trace", "first call (lowering + compile or load)", "first update",
                              "wall s", "a later update", "runs"], rows))


ROLLOUT_CASES = (("CartPole-v1", 8, 256, {}), ("MinAtar/Breakout-v1", 8, 128, dict(minibatch=256, epochs=4)))


def measure_rollout(args) -> str:
    """tfppo's rollout against the vector env's own step (CPU µs per env step), CartPole 8 envs x 256 and
    the MinAtar CNN 8 x 128; for MinAtar also the rollout through the compiled TF call it acted with before."""
    rows = []
    for env, n, t, extra in ROLLOUT_CASES:
        if env.startswith("MinAtar") and util.find_spec("minatar") is None:
            print("minatar is not installed (pip install -e '.[minatar]'): its rollout row is skipped.")
            continue
        spec = dict(lib="rollout", algo="ppo2", env=env, num_envs=n, n_steps=t, iterations=1,
                    threads=args.threads, repeats=max(args.repeats, 5), **extra)
        result = run_child(spec)
        label = f"{env} x{n}"
        rows.append([label, "vector env alone, random actions", f"{result['env']:.1f}", "1.00×"])
        rows.append([label, f"tfppo rollout, acting in {result['actor']}", f"{result['rollout']:.1f}",
                     f"**{result['rollout'] / result['env']:.2f}×**"])
        if "rollout_compiled" in result:
            rows.append([label, "tfppo rollout, acting through one compiled TF call",
                         f"{result['rollout_compiled']:.1f}", f"{result['rollout_compiled'] / result['env']:.2f}×"])
        print(f"  rollout {label}: {rows[-1][2]} µs per env step", flush=True)
    return ("Rollout (CPU µs per env step, medians, interleaved in one process; acting + env + bookkeeping)\n\n"
            + markdown_table(["envs", "what", "µs per env step", "× env alone"], rows))


def measure_scaling(args, have_sb3: bool) -> str:
    """PPO2 env-steps/s (after the first update) with 1..128 CartPole envs and the MinAtar CNN, tfppo
    beside SB3, interleaved per configuration: where each library's time goes as the batch of envs grows."""
    iterations = args.iterations or 10
    cases = [(f"CartPole-v1 x{n}", dict(env="CartPole-v1", num_envs=n, n_steps=max(2048 // n, 16)))
             for n in args.scaling_envs]
    if util.find_spec("minatar") is not None:
        cases.append(("MinAtar/Breakout-v1 CNN x8", dict(env="MinAtar/Breakout-v1", num_envs=8, n_steps=128,
                                                         minibatch=256, epochs=4, image=True)))
    else:
        print("minatar is not installed (pip install -e '.[minatar]'): its scaling row is skipped.")
    rows = []
    for label, case in cases:
        sides: dict[str, list[float]] = {"tfppo": [], "sb3": []}
        for repeat in range(args.repeats):
            libs = ["tfppo", *(["sb3"] if have_sb3 else [])]
            for lib in (libs if repeat % 2 == 0 else libs[::-1]):
                spec = dict(case, lib=lib, algo="ppo2", iterations=iterations, threads=args.threads)
                sides[lib].append(run_child(spec)["steady_steps_per_s"])
        ratio = f"**{paired_ratio(sides['tfppo'], sides['sb3']):.1f}×**" if have_sb3 else "—"
        rows.append([label, f"{case['n_steps']}", f"{statistics.median(sides['tfppo']):,.0f}",
                     f"{statistics.median(sides['sb3']):,.0f}" if have_sb3 else "—", ratio])
        print(f"  scaling {label}: tfppo {rows[-1][2]}, SB3 {rows[-1][3]} env-steps/s", flush=True)
    return (f"PPO2 scaling (env-steps/s after the first update, {iterations} iterations, medians of {args.repeats} "
            "interleaved pairs)\n\n" + markdown_table(["envs", "steps per env per iteration", "tfppo",
                                                          "SB3", "× SB3 (median of pairs)"], rows))


def measure_mpi_scaling(args) -> str:
    """PPO1 total env-steps/s with 2 MPI workers against 1 (CartPole 2048 per worker), interleaved, beside
    the machine's own ceiling: two independent one-worker runs at once (no MPI), summed."""
    from concurrent.futures import ThreadPoolExecutor

    spec = dict(lib="tfppo", algo="ppo1", env="CartPole-v1", num_envs=1, n_steps=2048,
                iterations=args.iterations or CONFIGS["cartpole-1x2048"]["iterations"], threads=1,
                xla=not args.mpi_no_xla)
    totals: dict[str, list[float]] = {"one": [], "mpi": [], "independent": []}
    steady: dict[str, list[float]] = {"one": [], "mpi": [], "independent": []}
    for repeat in range(args.repeats):
        order = ("one", "mpi", "independent") if repeat % 2 == 0 else ("independent", "mpi", "one")
        for case in order:
            if case == "independent":
                with ThreadPoolExecutor(2) as pool:
                    results = list(pool.map(run_child, [dict(spec, world=1)] * 2))
            else:
                world = 2 if case == "mpi" else 1
                results = [run_child(dict(spec, world=world), world=world)]
            totals[case].append(sum(r["steps_per_s"] for r in results))
            steady[case].append(sum(r["steady_steps_per_s"] for r in results))
            print(f"  [{repeat + 1}/{args.repeats}] PPO1 {MPI_CASES[case]}: {totals[case][-1]:,.0f} env-steps/s "
                  "in total", flush=True)
    ratio = lambda series, case: "1.00×" if case == "one" else \
        f"**{paired_ratio(series[case], series['one']):.2f}×** (pairs " + \
        ", ".join(f"{a / b:.2f}" for a, b in zip(series[case], series["one"])) + ")"
    rows = [[MPI_CASES[case], f"{statistics.median(totals[case]):,.0f}", ratio(totals, case),
             f"{statistics.median(steady[case]):,.0f}", ratio(steady, case)]
            for case in ("one", "mpi", "independent")]
    return ("PPO1 scaling, CartPole-v1, 2048 steps per worker per iteration; whole learn() (the one-time first "
            "update included) and after the first update\n\n"
            + markdown_table(["workers", "total env-steps/s, learn()", "× 1 worker (median of pairs)",
                              "after the first update", "× 1 worker"], rows))


MPI_CASES = {"one": "1 worker", "mpi": "mpirun -n 2",
             "independent": "2 independent 1-worker runs at once (the machine's ceiling)"}


def measure_startup(args) -> str:
    """Launch to first env step of `scripts/ppo2.py` against `python -c "import tensorflow"`, interleaved."""
    with tempfile.TemporaryDirectory() as tmp:
        train = [sys.executable, str(SCRIPTS / "ppo2.py"), "--env", "bench:FirstStepCartPole", "--num_envs", "8",
                 "--n_steps", "256", "--nminibatches", "32", "--noptepochs", "10", "--total_timesteps", "2048",
                 "--threads", str(args.threads), "--verbose", "0", "--log_dir", tmp]
        bare = [sys.executable, "-c", "import tensorflow"]
        tf_alone, first_step = [], []
        for repeat in range(args.repeats):
            for which in (("tf", "train") if repeat % 2 == 0 else ("train", "tf")):
                if which == "tf":
                    tf_alone.append(time_to_marker(bare, args.threads))
                else:
                    first_step.append(time_to_marker(train, args.threads))
    rows = [['python -c "import tensorflow"', f"{statistics.median(tf_alone):.2f}", "1.00×"],
            ["scripts/ppo2.py to its first env step", f"{statistics.median(first_step):.2f}",
             f"**{paired_ratio(first_step, tf_alone):.2f}×**"]]
    return "Start-up (process launch to first env step)\n\n" + \
        markdown_table(["process", "seconds (median)", "× import tensorflow (median of pairs)"], rows)


def measure_rss(args) -> str:
    """RSS of one long PPO2 CartPole 8x256 run at 100k steps and at the end."""
    first = 100_000
    spec = dict(lib="rss", algo="ppo2", env="CartPole-v1", num_envs=8, n_steps=256,
                iterations=max(-(-args.rss_steps // 2048), 2), threads=args.threads, marks=[first])
    result = run_child(spec)
    at = {int(k): v for k, v in result["rss_mb"].items()}
    last = max(at)
    growth = (at[last] / at[min(at)] - 1.0) * 100.0
    rows = [[f"{mark:,}", f"{rss:,.1f}"] for mark, rss in sorted(at.items())]
    return (f"Memory: PPO2 CartPole-v1 8x256 for {result['steps']:,} steps; RSS growth {min(at):,} → {last:,} "
            f"steps: **{growth:+.1f}%**\n\n" + markdown_table(["env steps", "RSS MB"], rows))


if __name__ == "__main__":
    sys.exit(main())
