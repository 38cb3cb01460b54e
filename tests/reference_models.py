"""The tutorial models written in Python the way their sources write them: independent references.

Nothing here comes from layerscope; tests compare these modules (through torchinfo) with the
reports layerscope makes from the YAML specs in configs/.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TinyModel(nn.Module):  # PyTorch "Building Models" tutorial
    def __init__(self) -> None:
        super().__init__()
        self.linear1 = nn.Linear(100, 200)
        self.activation = nn.ReLU()
        self.linear2 = nn.Linear(200, 10)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.linear2(self.activation(self.linear1(x))))


class LeNet(nn.Module):  # PyTorch "Building Models" tutorial
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 3)
        self.fc1 = nn.Linear(16 * 6 * 6, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, 576)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class LSTMTagger(nn.Module):  # PyTorch "Building Models" tutorial
    def __init__(self, embedding_dim: int = 6, hidden_dim: int = 6, vocab_size: int = 9, tagset_size: int = 3) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim)
        self.hidden2tag = nn.Linear(hidden_dim, tagset_size)

    def forward(self, sentence: torch.Tensor) -> torch.Tensor:
        embeds = self.word_embeddings(sentence)
        lstm_out, _ = self.lstm(embeds.view(len(sentence), 1, -1))
        tag_space = self.hidden2tag(lstm_out.view(len(sentence), -1))
        return F.log_softmax(tag_space, dim=1)


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)
        self.conv3 = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(F.relu(self.conv2(F.relu(self.conv1(x)))))


class Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.convnet = ConvNet()
        self.fc = nn.Linear(3072, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.convnet(x), 1))


class NestMLP(nn.Module):  # Dive into Deep Learning, 6.1
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LazyLinear(64), nn.ReLU(), nn.LazyLinear(32), nn.ReLU())
        self.linear = nn.LazyLinear(16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.net(x))


class FixedHiddenMLP(nn.Module):  # Dive into Deep Learning, 6.1, as the book writes it
    def __init__(self) -> None:
        super().__init__()
        # Random weight parameters that will not compute gradients and therefore keep constant during training
        self.rand_weight = torch.rand((20, 20))
        self.linear = nn.LazyLinear(20)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        X = self.linear(X)
        X = F.relu(X @ self.rand_weight + 1)
        # Reuse the fully connected layer. This is equivalent to sharing parameters with two fully connected layers
        X = self.linear(X)
        # Control flow
        while X.abs().sum() > 1:
            X /= 2
        return X.sum()


def chimera() -> nn.Module:  # Dive into Deep Learning, 6.1
    return nn.Sequential(NestMLP(), nn.LazyLinear(20), FixedHiddenMLP())


def lazy_mlp() -> nn.Module:  # Dive into Deep Learning, 6.1
    return nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))


def tied_mlp() -> nn.Module:  # Dive into Deep Learning, 6.2
    shared = nn.LazyLinear(8)
    return nn.Sequential(nn.LazyLinear(8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.LazyLinear(1))


def three_layer_mlp(relu: bool) -> nn.Module:
    act = [nn.ReLU] if relu else []
    return nn.Sequential(
        nn.Linear(784, 256), *[a() for a in act], nn.Linear(256, 128), *[a() for a in act], nn.Linear(128, 10)
    )


def exercise_convnet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 9, 3), nn.Tanh(), nn.MaxPool2d(2),
        nn.Conv2d(9, 25, 4), nn.Tanh(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(900, 540), nn.Tanh(), nn.Linear(540, 54), nn.Tanh(), nn.Linear(54, 10),
    )  # fmt: skip


def bn_convnet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(2048, 10),
    )  # fmt: skip


def transformer_encoder() -> nn.Module:  # the torch.nn.TransformerEncoder docs example
    return nn.TransformerEncoder(
        nn.TransformerEncoderLayer(d_model=512, nhead=8), num_layers=6, enable_nested_tensor=False
    )


class Block(nn.Module):
    """torchvision's ResNet BasicBlock (expansion 1) or Bottleneck (expansion 4), written out again."""

    def __init__(self, cin: int, c: int, stride: int, bottleneck: bool):
        super().__init__()
        cout = 4 * c if bottleneck else c
        if bottleneck:
            convs = [
                nn.Conv2d(cin, c, 1, bias=False),
                nn.Conv2d(c, c, 3, stride, 1, bias=False),
                nn.Conv2d(c, cout, 1, bias=False),
            ]
        else:
            convs = [nn.Conv2d(cin, c, 3, stride, 1, bias=False), nn.Conv2d(c, c, 3, 1, 1, bias=False)]
        self.convs = nn.ModuleList(convs)
        self.bns = nn.ModuleList(nn.BatchNorm2d(conv.out_channels) for conv in convs)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            out = bn(conv(out))
            out = out if i == len(self.convs) - 1 else torch.relu(out)
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


def resnet(depths: list[int], bottleneck: bool) -> nn.Module:
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
    ]
    cin = 64
    for stage, n in enumerate(depths):
        c = 64 * 2**stage
        for i in range(n):
            layers.append(Block(cin, c, 2 if stage and i == 0 else 1, bottleneck))
            cin = 4 * c if bottleneck else c
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1000))


# config name → (reference module factory, its input)
REFERENCES = {
    "tinymodel": (TinyModel, lambda: [torch.rand(1, 100)]),
    "lenet": (LeNet, lambda: [torch.rand(1, 1, 32, 32)]),
    "lstm_tagger": (LSTMTagger, lambda: [torch.tensor([0, 1, 2, 3, 8])]),
    "convnet": (ConvNet, lambda: [torch.rand(1, 3, 32, 32)]),
    "classifier": (Classifier, lambda: [torch.rand(1, 3, 32, 32)]),
    "nest_mlp": (NestMLP, lambda: [torch.rand(2, 20)]),
    "fixed_hidden_mlp": (FixedHiddenMLP, lambda: [torch.rand(2, 20)]),
    "chimera": (chimera, lambda: [torch.rand(2, 20)]),
    "lazy_mlp": (lazy_mlp, lambda: [torch.rand(2, 20)]),
    "tied_mlp": (tied_mlp, lambda: [torch.rand(2, 4)]),
    "three_layer_mlp": (lambda: three_layer_mlp(False), lambda: [torch.rand(1, 784)]),
    "three_layer_mlp_relu": (lambda: three_layer_mlp(True), lambda: [torch.rand(1, 784)]),
    "exercise_convnet": (exercise_convnet, lambda: [torch.rand(1, 1, 32, 32)]),
    "single_neuron": (lambda: nn.Linear(10, 1, bias=False), lambda: [torch.rand(1, 10)]),
    "bn_convnet": (bn_convnet, lambda: [torch.rand(1, 3, 32, 32)]),
    "transformer_encoder": (transformer_encoder, lambda: [torch.rand(10, 32, 512)]),
    "resnet18": (lambda: resnet([2, 2, 2, 2], False), lambda: [torch.rand(1, 3, 224, 224)]),
    "resnet50": (lambda: resnet([3, 4, 6, 3], True), lambda: [torch.rand(1, 3, 224, 224)]),
}

# zoo config name → its published parameter count (each spec's header comment cites the source)
PUBLISHED = {
    "alexnet": 61_100_840,
    "vgg16": 138_357_544,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "vit_b_16": 86_567_656,
    "gpt2": 124_439_808,
    "bert_base": 109_482_240,
    "llama_7b": 6_738_415_616,
    "llama2_70b": 68_976_648_192,
}
