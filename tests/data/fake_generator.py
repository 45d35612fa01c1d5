"""A tiny class-conditional "generator" for the replay tests: a flat colour per class name,
brighter with the image index; records its calls."""

import numpy as np

CALLS: list[tuple] = []


def generate(class_name: str, n: int, seed: int, weights: str | None = None) -> list:
    CALLS.append((class_name, n, seed, weights))
    shade = sum(map(ord, class_name)) % 200
    return [np.full((20, 24, 3), shade + i, np.uint8) for i in range(n)]


def generate_too_few(class_name: str, n: int, seed: int) -> list:
    return generate(class_name, n - 1, seed)
