#!/usr/bin/env python3
"""Side-by-side PyTorch CPU benchmark of the reference models (batch 64, 28x28x1).

Run with Debian's torch (python3-torch 1.13 + libopenblas0-openmp):

    /usr/bin/python3 tools/bench_torch.py --threads 2

Prints exactly ONE JSON line on stdout:

    {"torch": "<version>", "threads": N, "cases": {"critic_step": ms, ...}}

where ms is the median wall time (milliseconds) of --steps timed iterations after
--warmup untimed ones.

With --serve it builds the models once and then answers requests on stdin, one per
line, so that a caller (tools/bench.ts) can alternate its own timing rounds with
PyTorch's in the same minutes:

    run <case> <warmup> <steps> [<min_ms>]
                                  ->  {"case": "<case>", "times": [ms, ...]}
                                      (at least <steps> timed runs, and more until
                                      they add up to <min_ms>)
    quit                          ->  exits

After set-up it prints {"ready": true, "torch": "<version>", "threads": N}. Everything else (BLAS info, progress, rough GFLOP/s) goes
to stderr. All inputs are synthetic tensors created before any timing loop; each
timed iteration of a *_step case is exactly one training step
(zero_grad(set_to_none=True) + forward + backward + optimizer.step()).
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

B = 64
Z_DIM = 64          # generator latent size
S_ZDIM = 32         # student latent size
T = 2               # number of tasks (student mixture components)
N_CLASSES = 20      # feature-net classes
ALL_CASES = [
    "critic_step", "generator_step", "student_step", "features_step",
    "generator_b1", "generator_b64", "decoder_b1", "decoder_b64",
]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- models

class Generator(nn.Module):
    """z[64] -> SN-Linear 64->6272, ReLU, 128x7x7 -> SN-ConvT 128->64 k4s2p1, ReLU
    -> SN-ConvT 64->1 k4s2p1, Tanh. spectral_norm uses n_power_iterations=1 (train
    mode only; in eval mode the stored u/v are reused without iterating)."""

    def __init__(self):
        super().__init__()
        self.fc = spectral_norm(nn.Linear(Z_DIM, 128 * 7 * 7), n_power_iterations=1)
        self.up1 = spectral_norm(nn.ConvTranspose2d(128, 64, 4, 2, 1), n_power_iterations=1)
        self.up2 = spectral_norm(nn.ConvTranspose2d(64, 1, 4, 2, 1), n_power_iterations=1)

    def forward(self, z):
        h = F.relu(self.fc(z)).view(-1, 128, 7, 7)
        h = F.relu(self.up1(h))
        return torch.tanh(self.up2(h))


class Critic(nn.Module):
    """Conv 1->64 k4s2p1, LReLU .2, Conv 64->128 k4s2p1, LReLU .2, flatten 6272, Linear->1."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 64, 4, 2, 1)
        self.c2 = nn.Conv2d(64, 128, 4, 2, 1)
        self.fc = nn.Linear(128 * 7 * 7, 1)

    def forward(self, x):
        h = F.leaky_relu(self.c1(x), 0.2)
        h = F.leaky_relu(self.c2(h), 0.2)
        return self.fc(h.flatten(1))


class Encoder(nn.Module):
    """Conv 1->32 k4s2p1 ReLU, Conv 32->64 k4s2p1 ReLU, flatten 3136, Linear->256 ReLU = h;
    Linear 256->64 (mu | logvar), Linear 256->T (q(u|x) logits)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 4, 2, 1)
        self.c2 = nn.Conv2d(32, 64, 4, 2, 1)
        self.fc = nn.Linear(64 * 7 * 7, 256)
        self.zhead = nn.Linear(256, 2 * S_ZDIM)
        self.uhead = nn.Linear(256, T)

    def forward(self, x):
        h = F.relu(self.c1(x))
        h = F.relu(self.c2(h))
        h = F.relu(self.fc(h.flatten(1)))
        mu, logvar = self.zhead(h).chunk(2, dim=1)
        return mu, logvar, self.uhead(h)


class Decoder(nn.Module):
    """concat(z, onehot(u)) [34] -> Linear 256 ReLU -> Linear 3136 ReLU -> 64x7x7
    -> ConvT 64->32 k4s2p1 ReLU -> ConvT 32->1 k4s2p1 -> logits."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(S_ZDIM + T, 256)
        self.fc2 = nn.Linear(256, 64 * 7 * 7)
        self.up1 = nn.ConvTranspose2d(64, 32, 4, 2, 1)
        self.up2 = nn.ConvTranspose2d(32, 1, 4, 2, 1)

    def forward(self, z, u_onehot):
        h = F.relu(self.fc1(torch.cat([z, u_onehot], dim=1)))
        h = F.relu(self.fc2(h)).view(-1, 64, 7, 7)
        h = F.relu(self.up1(h))
        return self.up2(h)


class Student(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = Encoder()
        self.dec = Decoder()
        # p(z|u) = N(prior_mu[u], diag(exp(prior_logvar[u])))
        self.prior_mu = nn.Parameter(torch.randn(T, S_ZDIM) * 0.5)
        self.prior_logvar = nn.Parameter(torch.zeros(T, S_ZDIM))


class LeNet(nn.Module):
    """Conv 1->32 k3p1 ReLU MaxPool2, Conv 32->64 k3p1 ReLU MaxPool2, flatten 3136,
    Linear->128 ReLU, Linear 128->20."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, 1, 1)
        self.c2 = nn.Conv2d(32, 64, 3, 1, 1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, N_CLASSES)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.c1(x)), 2)
        h = F.max_pool2d(F.relu(self.c2(h)), 2)
        return self.fc2(F.relu(self.fc1(h.flatten(1))))


# --------------------------------------------------------------------------- losses

def gaussian_kl(mu, logvar, pmu, plogvar):
    """KL(N(mu, exp(logvar)) || N(pmu, exp(plogvar))), summed over dims -> [B]."""
    return 0.5 * (plogvar - logvar + (logvar.exp() + (mu - pmu) ** 2) / plogvar.exp() - 1.0).sum(1)


def info_nce(m1, m2, temperature=0.5):
    """One-direction NT-Xent / InfoNCE: L2-normalise both [B,32] mu matrices,
    s = m1 @ m2.T / temperature ([B,B]); positives are the diagonal, so the loss is
    cross_entropy(s, arange(B)) averaged over the batch (rows of view 1 vs. all of
    view 2; no view1-view1 negatives, no symmetric second term)."""
    m1 = F.normalize(m1, dim=1)
    m2 = F.normalize(m2, dim=1)
    s = m1 @ m2.t() / temperature
    return F.cross_entropy(s, torch.arange(m1.shape[0]))


def shift_views(x, gen, max_shift=2):
    """Per-sample translation by dy,dx in [-max_shift, max_shift] (|shift| 0..2 px),
    zero fill (pad + crop). Done once, before timing."""
    n, _, h, w = x.shape
    p = F.pad(x, (max_shift,) * 4)
    out = torch.empty_like(x)
    offs = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=gen)
    for i in range(n):
        dy, dx = int(offs[i, 0]), int(offs[i, 1])
        out[i] = p[i, :, dy:dy + h, dx:dx + w]
    return out


# --------------------------------------------------------------------------- FLOP count

def forward_flops(model, fn):
    """Approximate forward FLOPs (2*MAC) of Conv/ConvT/Linear layers during fn()."""
    total = [0]

    def hook(mod, inp, out):
        if isinstance(mod, nn.Linear):
            total[0] += 2 * inp[0].shape[0] * mod.in_features * mod.out_features
        elif isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            total[0] += 2 * out.numel() * (mod.in_channels // mod.groups) * k
        elif isinstance(mod, nn.ConvTranspose2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            total[0] += 2 * inp[0].numel() * (mod.out_channels // mod.groups) * k

    hs = [m.register_forward_hook(hook) for m in model.modules()
          if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        fn()
    for h in hs:
        h.remove()
    return total[0]


# --------------------------------------------------------------------------- env report

def report_backend():
    log(torch.__config__.parallel_info().rstrip())
    cfg = torch.__config__.show()
    blas_info = next((p.strip() for p in cfg.replace(",", "\n").splitlines()
                      if "BLAS_INFO" in p), "BLAS_INFO=?")
    # Debian builds use BLAS_INFO=generic (libblas.so.3 via update-alternatives),
    # so look at what the process actually mapped after a matmul.
    a = torch.randn(64, 64)
    a @ a
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if any(k in path for k in ("blas", "lapack", "mkl", "dnnl", "gomp", "omp")):
                    libs.add(path)
    except OSError:
        pass
    log(f"[bench] {blas_info}; mkldnn available={torch.backends.mkldnn.is_available()} "
        f"openmp={torch.backends.openmp.is_available()} mkl={torch.backends.mkl.is_available()}")
    for p in sorted(libs):
        log(f"[bench] mapped: {p}")
    if not any("openblas" in p or "mkl" in p for p in libs):
        log("[bench] WARNING: neither OpenBLAS nor MKL is mapped; BLAS may be reference/slow")
    if not torch.backends.mkldnn.is_available():
        log("[bench] WARNING: MKL-DNN (oneDNN) not available; convs use slow fallback")


# --------------------------------------------------------------------------- malloc

def tune_malloc():
    """glibc returns the multi-MB activation buffers to the OS (munmap / heap trim)
    after each step, so every step page-faults them back in; on this 2-core VM that
    made e.g. features_step bimodal (~15 ms vs ~50 ms, run to run). Stop trimming
    and keep big blocks on the heap so torch is measured reusing warm memory (as an
    engine with a buffer pool would). Equivalent to MALLOC_TRIM_THRESHOLD_ /
    MALLOC_MMAP_THRESHOLD_ / MALLOC_TOP_PAD_. Disable with --no-malloc-tune."""
    import ctypes
    import ctypes.util
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = (libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)      # glibc max on 64-bit
              and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
              and libc.mallopt(M_TOP_PAD, 64 << 20))
        log(f"[bench] malloc: tuned via mallopt (mmap 32MiB, trim 1GiB, top pad 64MiB) ok={bool(ok)}")
    except (OSError, AttributeError) as e:
        log(f"[bench] malloc: could not tune ({e}); timings may be bimodal")


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="intra-op threads (torch.set_num_threads); interop is 1 (default: os.cpu_count())")
    ap.add_argument("--steps", type=int, default=50, help="timed iterations per case (default 50)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed iterations per case (default 10)")
    ap.add_argument("--no-malloc-tune", action="store_true",
                    help="keep glibc's default malloc settings (see tune_malloc(); default: tuned)")
    ap.add_argument("--cases", type=str, default=",".join(ALL_CASES),
                    help="comma-separated subset of: " + ",".join(ALL_CASES))
    ap.add_argument("--serve", action="store_true",
                    help="answer 'run <case> <warmup> <steps>' lines on stdin (see above)")
    args = ap.parse_args()

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = [c for c in cases if c not in ALL_CASES]
    if bad:
        ap.error(f"unknown case(s) {bad}; choose from {ALL_CASES}")
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        ap.error("--steps >= 1, --warmup >= 0, --threads >= 1")

    if args.no_malloc_tune:
        log("[bench] malloc: glibc defaults (expect bimodal timings from page faults)")
    else:
        tune_malloc()
    torch.set_num_interop_threads(1)   # must happen before any inter-op work
    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)

    report_backend()
    log(f"[bench] torch {torch.__version__}, threads={torch.get_num_threads()}, "
        f"interop={torch.get_num_interop_threads()}"
        + ("" if args.serve else f", steps={args.steps}, warmup={args.warmup}"))

    # ---- models & optimizers
    G, D, S, L = Generator(), Critic(), Student(), LeNet()
    optD = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.5, 0.9))
    optG = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.5, 0.9))
    optS = torch.optim.Adam(S.parameters(), lr=1e-3)
    optL = torch.optim.Adam(L.parameters(), lr=1e-3)

    # ---- inputs (all precomputed, synthetic)
    real = torch.rand(B, 1, 28, 28, generator=gen) * 2 - 1          # GAN data in [-1,1]
    z = torch.randn(B, Z_DIM, generator=gen)
    z1 = torch.randn(1, Z_DIM, generator=gen)
    with torch.no_grad():
        G.train()
        fake = G(torch.randn(B, Z_DIM, generator=gen)).detach()      # critic's fake input
    eps_gp = torch.rand(B, 1, 1, 1, generator=gen)
    x01 = torch.rand(B, 1, 28, 28, generator=gen)                   # student data in [0,1]
    u = torch.randint(0, T, (B,), generator=gen)
    u_oh = F.one_hot(u, T).float()
    v1 = shift_views(x01, gen)
    v2 = shift_views(x01, gen)
    eps_s = torch.randn(B, S_ZDIM, generator=gen)
    labels = torch.randint(0, N_CLASSES, (B,), generator=gen)
    zs64 = torch.randn(B, S_ZDIM, generator=gen)
    zs1 = torch.randn(1, S_ZDIM, generator=gen)
    u_oh1 = F.one_hot(torch.zeros(1, dtype=torch.long), T).float()

    # ---- steps
    def critic_step():
        for p in D.parameters():
            p.requires_grad_(True)
        optD.zero_grad(set_to_none=True)
        x_hat = (eps_gp * real + (1 - eps_gp) * fake).requires_grad_(True)
        d_hat = D(x_hat)
        (grad,) = torch.autograd.grad(d_hat.sum(), x_hat, create_graph=True)
        gp = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
        loss = D(fake).mean() - D(real).mean() + 10.0 * gp
        loss.backward()
        optD.step()

    def generator_step():
        for p in D.parameters():          # no D weight-grads during G step
            p.requires_grad_(False)
        G.train()
        optG.zero_grad(set_to_none=True)
        loss = -D(G(z)).mean()
        loss.backward()
        optG.step()
        for p in D.parameters():
            p.requires_grad_(True)

    def student_step():
        optS.zero_grad(set_to_none=True)
        mu, logvar, ulogits = S.enc(x01)
        zz = mu + torch.exp(0.5 * logvar) * eps_s
        xlogits = S.dec(zz, u_oh)
        rec = F.binary_cross_entropy_with_logits(xlogits, x01, reduction="none").flatten(1).sum(1)
        kl = gaussian_kl(mu, logvar, S.prior_mu[u], S.prior_logvar[u])
        ce = F.cross_entropy(ulogits, u, reduction="none")
        elbo = (rec + 4.0 * kl + ce).mean()
        m1, _, _ = S.enc(v1)
        m2, _, _ = S.enc(v2)
        loss = elbo + 1.0 * info_nce(m1, m2, 0.5)
        loss.backward()
        optS.step()

    def features_step():
        optL.zero_grad(set_to_none=True)
        loss = F.cross_entropy(L(x01), labels)
        loss.backward()
        optL.step()

    def gen_infer(zz):
        def f():
            with torch.no_grad():
                return G(zz)
        return f

    def dec_infer(zz, oh):
        def f():
            with torch.no_grad():
                return torch.sigmoid(S.dec(zz, oh))
        return f

    fns = {
        "critic_step": critic_step,
        "generator_step": generator_step,
        "student_step": student_step,
        "features_step": features_step,
        "generator_b1": gen_infer(z1),
        "generator_b64": gen_infer(z),
        "decoder_b1": dec_infer(zs1, u_oh1),
        "decoder_b64": dec_infer(zs64, u_oh),
    }

    # ---- rough FLOP estimates (forward conv/linear FLOPs x backward multipliers)
    G.eval()
    fD = forward_flops(D, lambda: D(real))
    fG = forward_flops(G, lambda: G(z))
    fG1 = forward_flops(G, lambda: G(z1))
    fE = forward_flops(S.enc, lambda: S.enc(x01))
    fDec = forward_flops(S.dec, lambda: S.dec(zs64, u_oh))
    fDec1 = forward_flops(S.dec, lambda: S.dec(zs1, u_oh1))
    fL = forward_flops(L, lambda: L(x01))
    flops = {
        # 3 D forwards, input-grad (1x), backward of the real/fake passes (2x2),
        # double-backward of the x_hat pass (~4x): ~12 D-forwards
        "critic_step": 12 * fD,
        # G fwd+bwd (3x) + D fwd + input-grad only (2x)
        "generator_step": 3 * fG + 2 * fD,
        "student_step": 3 * (3 * fE + fDec),
        "features_step": 3 * fL,
        "generator_b1": fG1, "generator_b64": fG,
        "decoder_b1": fDec1, "decoder_b64": fDec,
    }

    def timed(name, warmup, steps, min_ms=0.0):
        fn = fns[name]
        if name.startswith("generator_b"):
            G.eval()      # inference: spectral norm without power iteration
        S.train(); D.train(); L.train()
        for _ in range(warmup):
            fn()
        times = []
        while len(times) < steps or sum(times) < min_ms:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        G.train()
        return times

    if args.serve:
        print(json.dumps({"ready": True, "torch": torch.__version__,
                          "threads": torch.get_num_threads()}), flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            if words[0] == "quit":
                return
            if (len(words) not in (4, 5) or words[0] != "run" or words[1] not in fns
                    or not all(w.isdigit() for w in words[2:])):
                print(json.dumps({"error": f"bad request {line.strip()!r}; expected "
                                  f"'run <case> <warmup> <steps> [<min_ms>]' with a case of {ALL_CASES}"}), flush=True)
                continue
            times = timed(words[1], int(words[2]), int(words[3]), float(words[4]) if len(words) == 5 else 0.0)
            print(json.dumps({"case": words[1], "times": [round(t, 4) for t in times]}), flush=True)
        return

    results = {}
    for name in cases:
        times = timed(name, args.warmup, args.steps)
        med = statistics.median(times)
        results[name] = round(med, 4)
        gfs = flops[name] / (med * 1e-3) / 1e9
        log(f"[bench] {name:15s} median {med:9.3f} ms  (min {min(times):.3f}, max {max(times):.3f})"
            f"  ~{flops[name] / 1e6:8.1f} MFLOP  ~{gfs:6.2f} GFLOP/s")

    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "cases": results}), flush=True)


if __name__ == "__main__":
    main()
