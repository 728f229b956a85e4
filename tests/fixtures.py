"""Data generated for tests: a Titanic-like CSV with a known survival rule, and a folder of rendered digits."""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFont

from py_shared.task import CNNModel, ConvLayer, ImageData, MLPModel, TabularData, TaskDefinition, Training

TITANIC_LIKE = TabularData(
    feature_columns=("Pclass", "Sex", "Age", "SibSp", "Fare", "Embarked"),
    label_column="Survived",
    label_values=("0", "1"),
    categorical={"Sex": ("male", "female"), "Embarked": ("C", "Q", "S")},
)


def titanic_like_csv(rows: int, seed: int = 0) -> str:
    """Passengers whose survival follows sex, class and age (with noise), some values missing, like the real one."""
    rng = random.Random(seed)
    lines = ["PassengerId,Survived,Pclass,Name,Sex,Age,SibSp,Fare,Embarked"]
    for pid in range(1, rows + 1):
        pclass, sex = rng.choice([1, 2, 3, 3]), rng.choice(["male", "male", "female"])
        age = rng.uniform(1, 75)
        logit = 4.0 * (sex == "female") - 1.5 * (pclass - 2) - 0.05 * (age - 30) - 1.5
        survived = int(rng.random() < 1 / (1 + math.exp(-logit)))
        fare = rng.uniform(5, 60) * (4 - pclass)
        age_text = "" if rng.random() < 0.15 else f"{age:.1f}"
        embarked = rng.choice(["C", "Q", "S", "S", ""])
        lines.append(
            f'{pid},{survived},{pclass},"Doe, Passenger {pid}",{sex},{age_text},'
            f"{rng.randint(0, 3)},{fare:.2f},{embarked}"
        )
    return "\n".join(lines) + "\n"


def titanic_like_task(epochs: int = 15) -> TaskDefinition:
    return TaskDefinition(
        id="titanic-like",
        title="Titanic-like survival",
        data=TITANIC_LIKE,
        model=MLPModel(hidden=(32, 16)),
        training=Training(epochs=epochs, batch_size=32, learning_rate=0.01),
    )


def digits_folder(folder: Path, per_digit: int, size: int = 28, seed: int = 0, digits: int = 10) -> Path:
    """Digits 0..digits-1 drawn with a font at random sizes, positions and angles, with noise; labels in labels.csv."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["filename,label"]
    for digit in range(digits):
        for k in range(per_digit):
            canvas = Image.new("L", (size * 2, size * 2), 0)
            font = ImageFont.load_default(size=rng.randint(int(size * 0.7), int(size * 0.95)))
            ImageDraw.Draw(canvas).text(
                (size * 0.6 + rng.uniform(-3, 3), size * 0.45 + rng.uniform(-3, 3)),
                str(digit),
                fill=255,
                font=font,
            )
            image = canvas.rotate(rng.uniform(-15, 15)).crop((size // 2, size // 2, size * 3 // 2, size * 3 // 2))
            noise = Image.frombytes("L", image.size, bytes(rng.randint(0, 50) for _ in range(size * size)))
            noisy = ImageChops.add(image, noise)
            name = f"{digit}_{k:03d}.png"
            noisy.save(folder / name)
            rows.append(f"{name},{digit}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def digits_task(epochs: int = 20, size: int = 28, digits: int = 10, learning_rate: float = 0.003) -> TaskDefinition:
    return TaskDefinition(
        id="digits",
        title="Digits",
        data=ImageData(width=size, height=size, channels=1, labels=tuple(str(d) for d in range(digits))),
        model=CNNModel(conv=(ConvLayer(channels=8), ConvLayer(channels=16)), dense=(64,)),
        training=Training(epochs=epochs, batch_size=32, learning_rate=learning_rate),
    )
