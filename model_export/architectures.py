"""The emotion CNNs. Input: (48, 48, 1) float pixels scaled to 0..1; output: 7 softmax scores.

``seed_cnn`` is the network of the published emotion-based music recommenders this product descends
from, kept as the baseline. ``moodnet`` is our default: a VGG-style net with batch norm and depthwise
separable convolutions in the deeper stages, which buys accuracy per multiply-add and stays well inside
the Pi's budget once quantised to int8.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

NUM_CLASSES = 7
INPUT_SHAPE = (48, 48, 1)


def seed_cnn(dropout: float = 0.25) -> keras.Model:
    inp = keras.Input(INPUT_SHAPE, name="face")
    x = layers.Conv2D(32, 3, activation="relu")(inp)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Conv2D(128, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(128, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(1024, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    out = layers.Dense(NUM_CLASSES, activation="softmax", name="scores")(x)
    return keras.Model(inp, out, name="seed_cnn")


def _conv(x, filters: int, stride: int = 1):
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def _sep(x, filters: int):
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def _sep_block(x, filters: int):
    """Two separable convs with a residual shortcut: cheap depth without vanishing gradients."""
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, use_bias=False)(x)
        shortcut = layers.BatchNormalization()(shortcut)
    y = _sep(x, filters)
    y = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    y = layers.Add()([y, shortcut])
    return layers.ReLU()(y)


def moodnet(width: int = 32, dropout: float = 0.4) -> keras.Model:
    inp = keras.Input(INPUT_SHAPE, name="face")
    w = width
    x = _conv(inp, w)  # 48x48: full conv while channels are few
    x = _conv(x, 2 * w, stride=2)  # 24x24
    x = _sep_block(x, 2 * w)
    x = layers.MaxPooling2D(2)(x)  # 12x12
    x = _sep_block(x, 4 * w)
    x = _sep_block(x, 4 * w)
    x = layers.MaxPooling2D(2)(x)  # 6x6
    x = _sep_block(x, 8 * w)
    x = _sep_block(x, 8 * w)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    out = layers.Dense(NUM_CLASSES, activation="softmax", name="scores")(x)
    return keras.Model(inp, out, name="moodnet")


def vgg_teacher(widths: tuple[int, int, int, int] = (40, 80, 160, 320), dropout: float = 0.4) -> keras.Model:
    """A plain VGG of four two-conv stages with batch norm, after the best published single FER2013 net
    (Khaireddin & Chen 2021) at a third of its width: a *teacher*, too slow for the Pi, whose soft
    predictions a device-sized student learns from (``distill.py``)."""
    inp = keras.Input(INPUT_SHAPE, name="face")
    x = inp
    for w in widths:
        x = _conv(x, w)
        x = _conv(x, w)
        x = layers.MaxPooling2D(2)(x)  # 48 -> 24 -> 12 -> 6 -> 3
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(512, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Dropout(dropout)(x)
    out = layers.Dense(NUM_CLASSES, activation="softmax", name="scores")(x)
    return keras.Model(inp, out, name="vgg_teacher")


#: networks the device can run (int8, a few ms per face on a Pi 4 core)
ARCHITECTURES: dict[str, Callable[[], keras.Model]] = {
    "seed_cnn": seed_cnn,
    "moodnet": moodnet,
    "moodnet_w48": lambda: moodnet(width=48),  # 1.5x the channels: more capacity, ~2.2x the multiply-adds
}

#: teachers for distillation (150-300 M multiply-adds): trained here, never shipped
TEACHERS: dict[str, Callable[[], keras.Model]] = {
    "moodnet_w72": lambda: moodnet(width=72, dropout=0.5),  # 2.25x the channels, ~5x the multiply-adds
    "vgg_teacher": vgg_teacher,
}


def build(name: str) -> keras.Model:
    try:
        return {**ARCHITECTURES, **TEACHERS}[name]()
    except KeyError:
        names = ", ".join([*ARCHITECTURES, *TEACHERS])
        raise ValueError(f"unknown architecture {name!r}; choose from {names}") from None


def multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of one forward pass (conv, separable conv and dense layers), for budgeting."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.SeparableConv2D):
            _, h, w, c_out = layer.output.shape
            c_in = layer.input.shape[-1]
            kh, kw = layer.kernel_size
            total += h * w * (kh * kw * c_in + c_in * c_out)
        elif isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            c_in = layer.input.shape[-1]
            kh, kw = layer.kernel_size
            total += h * w * kh * kw * c_in * c_out
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)
