"""Scaling laws: loss from (params, tokens), compute-optimal allocation, and budget plans.

Training compute is C = 6 N D FLOPs throughout (Kaplan et al. 2020 sec. 2.1; Hoffmann et al.
2022 sec. 3), N = parameters, D = training tokens.

- Chinchilla form, L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, "Training
  Compute-Optimal Large Language Models", Approach 3, eq. 10). Two fits: Hoffmann's published
  (rounded) coefficients and the Epoch AI refit (Besiroglu et al. 2024, "Chinchilla Scaling: A
  replication attempt", arXiv 2404.10102). Hoffmann's rounded fit puts 63-153 tokens per
  parameter at 1e22-1e26 FLOPs, the refit 16-20: plan with the refit (the default).
- Kaplan form, L(N, D) = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D (Kaplan et al. 2020,
  "Scaling Laws for Neural Language Models", eq. 1.5), N = non-embedding parameters, with the
  paper's own compute-efficient allocation N_opt = 1.3e9 (C_min / PF-day)^0.73 (Table 6, Fig. 14).

Losses are nats per token on each paper's own data set and tokenizer: compare allocations
across fits, not losses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

FLOPS_PER_PARAM_TOKEN = 6.0  # C = 6 N D: forward 2 + backward 4 (Kaplan 2020 sec. 2.1)
FLOPS_PER_PF_DAY = 1e15 * 86400.0  # Kaplan 2020 measures compute in PF-days = 8.64e19 FLOPs
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0
_LOG_FLOPS_BRACKET = (math.log(1e-30), math.log(1e300))  # search range for compute_for_loss


def _positive(name: str, value) -> np.ndarray:
    """`value` as a float array, or ValueError naming `name` unless every entry is finite and > 0."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}") from None
    if not np.all(np.isfinite(arr) & (arr > 0)):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return arr


def _out(arr: np.ndarray) -> float | np.ndarray:
    """A 0-d result as a Python float, anything else as the array."""
    return float(arr) if np.ndim(arr) == 0 else arr


def _invert_decreasing(f, target: float, what: str) -> float:
    """FLOPs C with f(C) == target for f decreasing in C: brentq on log C (bracket 1e-30..1e300)."""
    lo, hi = _LOG_FLOPS_BRACKET
    g = lambda log_c: f(math.exp(log_c)) - target  # noqa: E731
    if g(hi) > 0:
        raise ValueError(f"{what}: target_loss={target} needs more than 1e300 FLOPs")
    if g(lo) < 0:
        raise ValueError(f"{what}: target_loss={target} is reached below 1e-30 FLOPs")
    return math.exp(brentq(g, lo, hi, xtol=1e-12, rtol=1e-14))


@dataclass(frozen=True)
class ChinchillaFit:
    """L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, eq. 10); loss in nats/token."""

    name: str
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str

    def loss(self, n_params, n_tokens):
        """L = E + A / N^alpha + B / D^beta (Hoffmann 2022 eq. 10); numpy-vectorised."""
        n = _positive("n_params", n_params)
        d = _positive("n_tokens", n_tokens)
        return _out(self.E + self.A / n**self.alpha + self.B / d**self.beta)

    @property
    def G(self) -> float:
        """G = (alpha A / (beta B))^(1 / (alpha + beta)) (Hoffmann 2022 eq. 4 / App. D.2)."""
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))

    def compute_optimal(self, flops):
        """(N*, D*) minimising L under C = 6 N D (Hoffmann 2022 eq. 4, closed form).

        N* = G (C/6)^(beta / (alpha + beta)), D* = (C/6) / N* = G^-1 (C/6)^(alpha / (alpha + beta)).
        """
        c6 = _positive("flops", flops) / FLOPS_PER_PARAM_TOKEN
        n_params = self.G * c6 ** (self.beta / (self.alpha + self.beta))
        return _out(n_params), _out(c6 / n_params)

    def loss_at_compute_optimal(self, flops):
        """L(N*(C), D*(C)) = E + K (C/6)^(-alpha beta / (alpha + beta)), K = A G^-alpha + B G^beta."""
        return self.loss(*self.compute_optimal(flops))

    def compute_for_loss(self, target_loss: float) -> float:
        """Smallest C (FLOPs) whose compute-optimal loss is `target_loss`.

        Both terms of L*(C) - E decay as (C/6)^-gamma, gamma = alpha beta / (alpha + beta), so
        C = 6 (K / (L - E))^(1 / gamma) with K = A G^-alpha + B G^beta (exact inverse of
        `loss_at_compute_optimal`; no root search needed).
        """
        excess = float(target_loss) - self.E
        if not math.isfinite(excess) or excess <= 0:
            raise ValueError(f"target_loss={target_loss} must exceed the irreducible loss "
                             f"E={self.E} of fit {self.name!r}")
        k = self.A * self.G ** -self.alpha + self.B * self.G**self.beta
        gamma = self.alpha * self.beta / (self.alpha + self.beta)
        return FLOPS_PER_PARAM_TOKEN * (k / excess) ** (1.0 / gamma)

    def tokens_for_loss(self, n_params: float, target_loss: float) -> float:
        """Tokens a fixed N needs to reach `target_loss` (over-training).

        D = (B / (L - E - A / N^alpha))^(1 / beta), from eq. 10 solved for D.
        """
        n = float(_positive("n_params", n_params))
        floor = self.E + self.A / n**self.alpha  # loss with infinite data
        if not target_loss > floor:
            raise ValueError(f"target_loss={target_loss} is unreachable with n_params={n:.3g}: "
                             f"its infinite-data loss is {floor:.4f} under fit {self.name!r}")
        return (self.B / (target_loss - floor)) ** (1.0 / self.beta)


@dataclass(frozen=True)
class KaplanFit:
    """Kaplan et al. 2020: joint L(N, D) (eq. 1.5) and compute-efficient N_opt(C) (Table 6).

    N counts non-embedding parameters. C_min (PF-days) is Kaplan's compute at B << B_crit;
    here it is taken to be the 6 N D budget.
    """

    name: str
    alpha_N: float
    alpha_D: float
    n_c_params: float
    d_c_tokens: float
    n_opt_params_at_1_pf_day: float
    n_opt_exponent: float
    source: str

    def loss(self, n_params, n_tokens):
        """L = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D (Kaplan 2020 eq. 1.5); vectorised."""
        n = _positive("n_params", n_params)
        d = _positive("n_tokens", n_tokens)
        ratio = self.alpha_N / self.alpha_D
        return _out(((self.n_c_params / n) ** ratio + self.d_c_tokens / d) ** self.alpha_D)

    def compute_optimal(self, flops):
        """(N_opt, C / (6 N_opt)), N_opt = 1.3e9 (C / PF-day)^0.73 (Kaplan 2020 Table 6, Fig. 14).

        This is Kaplan's own frontier (from L(N, S) at the critical batch size, sec. 6), not the
        argmin of eq. 1.5 along C = 6 N D (that is `joint_optimum`, N ∝ C^0.575). D is set by
        C = 6 N D; Table 6's D_opt = 2e10 C_min^0.27 would not satisfy it (6 N D = 1.8 C_min).
        """
        c = _positive("flops", flops)
        n_params = self.n_opt_params_at_1_pf_day * (c / FLOPS_PER_PF_DAY) ** self.n_opt_exponent
        return _out(n_params), _out(c / (FLOPS_PER_PARAM_TOKEN * n_params))

    def joint_optimum(self, flops):
        """(N*, D*) minimising eq. 1.5 under C = 6 N D (set dL/dN = 0 with D = C / 6N).

        With a = alpha_N / alpha_D: N* = (a N_c^a C / (6 D_c))^(1 / (1 + a)), so N* ∝ C^0.575.
        """
        c = _positive("flops", flops)
        a = self.alpha_N / self.alpha_D
        n_params = (a * self.n_c_params**a * c / (FLOPS_PER_PARAM_TOKEN * self.d_c_tokens)) ** (1 / (1 + a))
        return _out(n_params), _out(c / (FLOPS_PER_PARAM_TOKEN * n_params))

    def loss_at_compute_optimal(self, flops):
        """Eq. 1.5 evaluated at `compute_optimal(flops)`."""
        return self.loss(*self.compute_optimal(flops))

    def compute_for_loss(self, target_loss: float) -> float:
        """Smallest C (FLOPs) with loss_at_compute_optimal(C) == target_loss (brentq on log C)."""
        target = float(target_loss)
        if not math.isfinite(target) or target <= 0:
            raise ValueError(f"target_loss={target_loss} must be > 0 (the Kaplan law has no "
                             "irreducible term; its loss tends to 0)")
        return _invert_decreasing(self.loss_at_compute_optimal, target, f"fit {self.name!r}")


ScalingFit = ChinchillaFit | KaplanFit

HOFFMANN_2022 = ChinchillaFit(
    name="hoffmann2022", E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28,
    source='Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models", '
           "Approach 3, eq. 10 (published rounded coefficients)",
)
EPOCH_2024 = ChinchillaFit(
    name="epoch2024", E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658,
    source='Besiroglu, Erdil, Barnett, You 2024, "Chinchilla Scaling: A replication attempt", '
           "arXiv 2404.10102 (refit of Hoffmann Approach 3)",
)
KAPLAN_2020 = KaplanFit(
    name="kaplan2020", alpha_N=0.076, alpha_D=0.103, n_c_params=6.4e13, d_c_tokens=1.8e13,
    n_opt_params_at_1_pf_day=1.3e9, n_opt_exponent=0.73,
    source='Kaplan et al. 2020, "Scaling Laws for Neural Language Models", arXiv 2001.08361: '
           "eq. 1.5 (joint L(N, D)), Table 6 / Fig. 14 (N_opt = 1.3e9 C_min^0.73, C_min in PF-days)",
)
FITS: dict[str, ScalingFit] = {"hoffmann2022": HOFFMANN_2022, "epoch2024": EPOCH_2024,
                               "kaplan2020": KAPLAN_2020}
DEFAULT_FIT = "epoch2024"


def get_fit(name: str) -> ScalingFit:
    """The fit registered under `name` in FITS."""
    if name not in FITS:
        raise ValueError(f"unknown scaling fit {name!r}; valid choices: {', '.join(sorted(FITS))}")
    return FITS[name]


def _resolve(fit: ScalingFit | str) -> ScalingFit:
    return get_fit(fit) if isinstance(fit, str) else fit


@dataclass(frozen=True)
class BudgetPlan:
    """A training run: size, tokens, compute (C = 6 N D) and the fit's predicted loss (nats/token)."""

    fit: str
    flops: float
    n_params: float
    n_tokens: float
    tokens_per_param: float
    loss: float


def _scalar_positive(name: str, value) -> float:
    """`value` as a float, or ValueError naming `name` unless it is a finite number > 0."""
    if isinstance(value, bool) or np.ndim(value) != 0:
        raise ValueError(f"{name} must be a single finite number > 0, got {value!r}")
    return float(_positive(name, value))


def budget_flops(*, flops=None, usd=None, usd_per_device_hour=None, deadline_days=None,
                 n_devices=None, achieved_flops_per_device=None) -> float:
    """Training FLOPs from exactly one budget (Epoch AI method 2: time x devices x achieved FLOP/s).

    - flops: used as is;
    - usd: usd / usd_per_device_hour * 3600 * achieved_flops_per_device;
    - deadline_days: deadline_days * 86400 * n_devices * achieved_flops_per_device.
    achieved_flops_per_device is FLOP/s actually sustained (peak x MFU).
    """
    given = {"flops": flops, "usd": usd, "deadline_days": deadline_days}
    kinds = [k for k, v in given.items() if v is not None]
    if len(kinds) != 1:
        raise ValueError(f"give exactly one budget of flops, usd, deadline_days; got {kinds or 'none'}")
    needs = {"flops": (), "usd": ("usd_per_device_hour", "achieved_flops_per_device"),
             "deadline_days": ("n_devices", "achieved_flops_per_device")}[kinds[0]]
    extras = {"usd_per_device_hour": usd_per_device_hour, "n_devices": n_devices,
              "achieved_flops_per_device": achieved_flops_per_device}
    for name, value in extras.items():
        if value is None and name in needs:
            raise ValueError(f"{name} is required with a {kinds[0]} budget")
        if value is not None and name not in needs:
            raise ValueError(f"{name} is not used with a {kinds[0]} budget; leave it out")
    args = {k: _scalar_positive(k, v) for k, v in {**given, **extras}.items() if v is not None}
    if kinds[0] == "flops":
        return args["flops"]
    if kinds[0] == "usd":
        device_hours = args["usd"] / args["usd_per_device_hour"]
        return device_hours * SECONDS_PER_HOUR * args["achieved_flops_per_device"]
    seconds = args["deadline_days"] * SECONDS_PER_DAY
    return seconds * args["n_devices"] * args["achieved_flops_per_device"]


def plan_for_budget(fit: ScalingFit | str = DEFAULT_FIT, *, flops=None, usd=None,
                    usd_per_device_hour=None, deadline_days=None, n_devices=None,
                    achieved_flops_per_device=None) -> BudgetPlan:
    """Compute-optimal (N, D) and loss for one budget (FLOPs, dollars or a deadline; see budget_flops)."""
    fit = _resolve(fit)
    c = budget_flops(flops=flops, usd=usd, usd_per_device_hour=usd_per_device_hour,
                     deadline_days=deadline_days, n_devices=n_devices,
                     achieved_flops_per_device=achieved_flops_per_device)
    n_params, n_tokens = fit.compute_optimal(c)
    return BudgetPlan(fit=fit.name, flops=c, n_params=n_params, n_tokens=n_tokens,
                      tokens_per_param=n_tokens / n_params, loss=fit.loss(n_params, n_tokens))


def overtrained_plan(fit: ScalingFit | str, n_params: float, tokens_per_param: float) -> BudgetPlan:
    """A fixed-size model trained past the optimum (inference-heavy use): D = r N, C = 6 N D."""
    fit = _resolve(fit)
    n = _scalar_positive("n_params", n_params)
    r = _scalar_positive("tokens_per_param", tokens_per_param)
    d = r * n
    return BudgetPlan(fit=fit.name, flops=FLOPS_PER_PARAM_TOKEN * n * d, n_params=n, n_tokens=d,
                      tokens_per_param=r, loss=fit.loss(n, d))
