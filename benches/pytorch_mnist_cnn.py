"""PyTorch eager reference for the training speed of xp's MNIST CNN.

Trains the basics tutorial's CNN (the `mnist` preset of the `build` kind) on
4,000 random 28x28 inputs with Adam and batches of 32, as the `train` kind
does, and prints samples per second for each of 3 epochs. Run it with
PyTorch 2.13.0 in a throwaway virtual environment; the optional argument is
the thread count (default 2).
"""
import sys
import time

import torch

torch.manual_seed(0)
threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads); torch.set_num_interop_threads(1)
n = 4000
x = torch.rand(n, 1, 28, 28); y = torch.randint(0, 10, (n,))
net = torch.nn.Sequential(
    torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(),
    torch.nn.MaxPool2d(2), torch.nn.Dropout(0.25), torch.nn.Flatten(),
    torch.nn.Linear(9216, 128), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(128, 10))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
for epoch in range(3):
    start = time.perf_counter(); order = torch.randperm(n)
    for b in range(0, n, 32):
        idx = order[b:b+32]
        loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad(); loss.backward(); opt.step()
    print(f"epoch {epoch+1}: {n / (time.perf_counter() - start):.0f} samples/s")
