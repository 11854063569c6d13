#!/usr/bin/python3
"""torch-bench-conv.py - the PyTorch CPU peer of dsnn-bench-conv's dense configuration.

    /usr/bin/python3 tests/bench/torch-bench-conv.py --net vgg16|resnet18 --steps N
        [--warmup 1] [--batch 128] [--threads 0] [--repeat 1] [--layers]

The same networks as dsnn-bench-conv (CIFAR-shaped random inputs 3x32x32, 10 classes):
  vgg16     13 conv3x3 (padding 1, biases) + BatchNorm2d + ReLU, 5 max poolings, Linear(512, 10)
  resnet18  conv3x3 64 + BN + ReLU, 4 stages of 2 BasicBlocks (64, 128, 256, 512 channels, strides
            1 2 2 2, 1x1 conv + BN shortcuts, no conv biases), global average pooling, Linear
and the same step: forward, cross-entropy, backward, SGD (lr 0.01, momentum 0.9). Prints one JSON
line with the median seconds per step of --steps timed steps (after --warmup untimed ones; the
fastest median of --repeat runs) and the thread count. Debian's python3-torch imports only under
/usr/bin/python3. Run it right after dsnn-bench-conv on the same machine for a same-run ratio.

--layers prints instead, like dsnn-bench-conv --layers, the forward and backward (input and weight
gradients) milliseconds of each 3x3 convolution shape of VGG-16 / ResNet-18 alone (padding 1,
stride 1, bias), the fastest of --steps runs after --warmup, one JSON line per shape with the same
"layer" names, so the two programs' lines can be compared layer by layer.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg16():
    layers, c = [], 3
    for v in VGG16:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1, bias=True), nn.BatchNorm2d(v), nn.ReLU()]
            c = v
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512, 10))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


def resnet18():
    layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    c = 64
    for i, ch in enumerate([64, 128, 256, 512]):
        for b in range(2):
            layers.append(BasicBlock(c, ch, 2 if (b == 0 and i > 0) else 1))
            c = ch
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10))


def run(args):
    torch.manual_seed(1)
    model = vgg16() if args.net == "vgg16" else resnet18()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))
    times = []
    for s in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if s >= args.warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


LAYER_SHAPES = [(3, 64, 32), (64, 64, 32), (64, 128, 16), (128, 128, 16), (128, 256, 8),
                (256, 256, 8), (256, 512, 4), (512, 512, 4), (512, 512, 2)]


def run_layers(args):
    torch.manual_seed(3)
    for cin, cout, hw in LAYER_SHAPES:
        conv = nn.Conv2d(cin, cout, 3, stride=1, padding=1, bias=True)
        x = torch.randn(args.batch, cin, hw, hw, requires_grad=True)
        dy = torch.randn(args.batch, cout, hw, hw)
        tf = tb = float("inf")
        for s in range(args.warmup + max(1, args.steps)):
            x.grad = None
            conv.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            y = conv(x)
            t1 = time.perf_counter()
            y.backward(dy)
            t2 = time.perf_counter()
            if s >= args.warmup:
                tf, tb = min(tf, t1 - t0), min(tb, t2 - t1)
        print(json.dumps({"layer": "%dx%dx%d->%d" % (cin, hw, hw, cout), "config": "pytorch",
                          "fwd_ms": round(tf * 1e3, 2), "bwd_ms": round(tb * 1e3, 2),
                          "threads": torch.get_num_threads()}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--net", choices=["vgg16", "resnet18"], default="vgg16")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=0, help="0: all cores")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--layers", action="store_true",
                   help="time each convolution shape alone (as dsnn-bench-conv --layers)")
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.layers:
        run_layers(args)
        return
    best = min(run(args) for _ in range(max(1, args.repeat)))
    print(json.dumps({"config": "pytorch", "framework": "pytorch " + torch.__version__,
                      "net": args.net, "batch": args.batch, "threads": torch.get_num_threads(),
                      "mkldnn": torch.backends.mkldnn.is_available(),
                      "seconds_per_step": round(best, 4)}))


if __name__ == "__main__":
    main()
