"""Brute-force references for test/baselines.test.ts, from the Fashion-MNIST files themselves (numpy only).

  knn DATA SUBSET_JSON K T VOTE   raw-pixel kNN: bank = the training images SUBSET_JSON lists, queries =
                                  the 10 000 test images; prints JSON {confusion, top1, fragile}
  stats DATA SUBSET_JSON          per-feature mean and population std of the same images' pixels

Pixels are what `moco knn --baseline pixels` compares: x / 255 normalised with Fashion-MNIST's
mean 0.286 and std 0.353, flattened, L2-normalised; similarities in float64. `fragile` counts the
queries whose answer hangs on two neighbours of different classes less than 1e-5 apart in similarity
(float32 may order them either way); the TypeScript side may differ from this reference on those only.
"""
import gzip
import json
import sys

import numpy as np

MEAN, STD = 0.286, 0.353


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(root, split, indices=None):
    prefix = "train" if split == "train" else "t10k"
    images = idx(f"{root}/{prefix}-images-idx3-ubyte.gz")
    labels = idx(f"{root}/{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    if indices is not None:
        images, labels = images[indices], labels[indices]
    return images, labels


def pixels(images):
    x = (images.reshape(len(images), -1).astype(np.float64) / 255.0 - MEAN) / STD
    return x


def knn(root, subset_json, k, t, vote):
    indices = json.load(open(subset_json))["indices"]
    bank_images, bank_labels = load(root, "train", indices)
    test_images, test_labels = load(root, "test")
    bank = pixels(bank_images)
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    queries = pixels(test_images)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    classes = 10
    confusion = np.zeros((classes, classes), dtype=np.int64)
    fragile = 0
    for start in range(0, len(queries), 1000):
        sims = queries[start : start + 1000] @ bank.T
        order = np.argsort(-sims, axis=1, kind="stable")[:, : k + 1]
        for row, ranked in enumerate(order):
            s = sims[row, ranked]
            labels = bank_labels[ranked]
            top, top_labels = s[:k], labels[:k]
            if vote == "weighted":
                scores = np.zeros(classes)
                np.add.at(scores, top_labels, np.exp(top / t))
                prediction = int(np.argmax(scores))
                # Only who is in the top k counts, and how the two best totals compare.
                first, second = np.sort(scores)[::-1][:2]
                swap = len(s) > k and s[k - 1] - s[k] < 1e-5 and labels[k - 1] != labels[k]
                if (swap and first - second <= 2 * np.exp(s[k - 1] / t)) or first - second < 1e-5 * first:
                    fragile += 1
            else:
                # The order of the top k + 1 counts (membership, and ties go to the nearest).
                near = np.abs(np.diff(s)) < 1e-5
                if np.any(near & (labels[:-1] != labels[1:])):
                    fragile += 1
                counts = np.bincount(top_labels, minlength=classes)
                tied = set(np.flatnonzero(counts == counts.max()).tolist())
                # A tie goes to the tied class of the nearest neighbour.
                prediction = int(next(c for c in top_labels if c in tied))
            confusion[test_labels[start + row], prediction] += 1
    top1 = 100.0 * np.trace(confusion) / confusion.sum()
    return {"confusion": confusion.tolist(), "top1": top1, "fragile": fragile}


def stats(root, subset_json):
    indices = json.load(open(subset_json))["indices"]
    images, _ = load(root, "train", indices)
    x = pixels(images)
    return {"mean": x.mean(axis=0).tolist(), "std": x.std(axis=0, ddof=0).tolist()}


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "knn":
        root, subset_json, k, t, vote = sys.argv[2:7]
        print(json.dumps(knn(root, subset_json, int(k), float(t), vote)))
    elif command == "stats":
        print(json.dumps(stats(*sys.argv[2:4])))
    else:
        raise SystemExit(f"unknown command {command}")
