"""PyTorch peer for bench/bench_cuda.cpp: the same GEMM and elementwise rows on the same GPU."""
import time

import torch


def median_ms(f, reps):
    ts = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        f()
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    return ts[len(ts) // 2]


def main():
    if not torch.cuda.is_available():
        print("torch_cuda.py: no GPU visible")
        return
    print("| figure (PyTorch %s) | value |" % torch.__version__)
    print("|---|---|")
    for n in (1024, 4096, 8192):
        for name in ("fp32", "tf32", "bf16"):
            torch.backends.cuda.matmul.allow_tf32 = name == "tf32"
            dt = torch.bfloat16 if name == "bf16" else torch.float32
            a = torch.randn(n, n, device="cuda").to(dt)
            b = torch.randn(n, n, device="cuda").to(dt)
            for _ in range(3):
                a @ b
            ms = median_ms(lambda: a @ b, 5 if n >= 8192 else 10)
            print("| gemm %d^3 %s | %.1f TFLOP/s (%.3f ms) |" % (n, name, 2 * n**3 / (ms * 1e-3) / 1e12, ms))
    torch.backends.cuda.matmul.allow_tf32 = False
    n = 64 << 20
    a = torch.randn(n, device="cuda")
    b = torch.randn(n, device="cuda")
    ms = median_ms(lambda: a + b, 20)
    print("| add 64M fp32 | %.0f GB/s |" % (3 * n * 4 / (ms * 1e-3) / 1e9))
    ms = median_ms(lambda: a.sum(), 20)
    print("| sum 64M fp32 | %.0f GB/s |" % (n * 4 / (ms * 1e-3) / 1e9))


if __name__ == "__main__":
    main()
