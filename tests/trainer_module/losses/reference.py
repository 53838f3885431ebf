"""Independent NumPy references for every loss: explicit Python loops, float64.

Each takes the same inputs as the TensorFlow loss (queries = references = the batch) and
follows the formula in the loss's docstring, written out element by element.
"""

from __future__ import annotations

import math

import numpy as np


def dist(name, x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if name == "squared_l2":
        return float(np.sum((x - y) ** 2))
    if name == "l2":
        return float(np.sqrt(np.sum((x - y) ** 2)))
    return 1.0 - cos(x, y)


def cos(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def softplus(x):
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def log_sum_exp(values):
    if not values:
        return -math.inf
    peak = max(values)
    return peak + math.log(sum(math.exp(v - peak) for v in values))


def _split(labels, i):
    n = len(labels)
    pos = [j for j in range(n) if j != i and labels[j] == labels[i]]
    neg = [j for j in range(n) if labels[j] != labels[i]]
    return pos, neg


def _mean(values):
    return float(np.mean(values)) if values else 0.0


# ---- classification -----------------------------------------------------------------------


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def _smoothed(y, c, eps):
    return np.array([(1 - eps) * (k == y) + eps / c for k in range(c)])


def classification(name, labels, logits, label_smoothing=0.0):
    out = []
    for y, z in zip(labels, np.asarray(logits, np.float64), strict=True):
        c = len(z)
        p = _softmax(z)
        q = _smoothed(y, c, label_smoothing)
        if name == "categorical_crossentropy":
            out.append(-sum(q[k] * math.log(p[k]) for k in range(c)))
        elif name == "sparse_categorical_crossentropy":
            out.append(-math.log(p[y]))
        elif name == "categorical_hinge":
            out.append(max(0.0, 1 + max(z[k] for k in range(c) if k != y) - z[y]))
        elif name == "kl_divergence":
            out.append(sum(q[k] * (math.log(q[k]) - math.log(p[k])) for k in range(c) if q[k] > 0))
        elif name == "poisson":
            out.append(sum(p[k] - q[k] * math.log(p[k]) for k in range(c)) / c)
    return float(np.mean(out))


# ---- pairs --------------------------------------------------------------------------------


def pair(name, targets, left, right, **p):
    out = []
    for t, a, b in zip(targets, left, right, strict=True):
        t = float(t) if p.get("similar_label", 1) == 1 else 1.0 - float(t)
        c = cos(a, b)
        s = (1 + c) / 2
        sign = 2 * t - 1
        if name == "contrastive":
            d_name = p.get("distance", "l2")
            d = dist(d_name, a, b)
            d_sq, d_lin = (d, math.sqrt(d)) if d_name == "squared_l2" else (d * d, d)
            m = p.get("margin", 1.0)
            out.append(p.get("factor", 0.5) * (t * d_sq + (1 - t) * max(0.0, m - d_lin) ** 2))
        elif name == "binary_crossentropy":
            z = p.get("scale", 10.0) * c + p.get("bias", -5.0)
            prob = 1 / (1 + math.exp(-z))
            out.append(-(t * math.log(prob) + (1 - t) * math.log(1 - prob)))
        elif name == "hinge":
            out.append(max(0.0, 1 - sign * c))
        elif name == "squared_hinge":
            out.append(max(0.0, 1 - sign * c) ** 2)
        elif name == "mean_squared_error":
            out.append((t - s) ** 2)
        elif name == "mean_absolute_error":
            out.append(abs(t - s))
        elif name == "huber":
            e, delta = abs(t - s), p.get("delta", 1.0)
            out.append(0.5 * e * e if e <= delta else delta * (e - 0.5 * delta))
        elif name == "log_cosh":
            out.append(math.log(math.cosh(t - s)))
        elif name == "cosine_similarity":
            out.append(-sign * c)
    return float(np.mean(out))


# ---- offline triplets ---------------------------------------------------------------------


def triplet(a, p, n, margin=0.2, distance="squared_l2"):
    return _mean(
        [
            max(0.0, dist(distance, a[i], p[i]) - dist(distance, a[i], n[i]) + margin)
            for i in range(len(a))
        ]
    )


def triplet_k_negatives(a, p, negs, margin=0.2, distance="squared_l2"):
    return _mean(
        [
            max(
                0.0,
                dist(distance, a[i], p[i]) - min(dist(distance, a[i], n) for n in negs[i]) + margin,
            )
            for i in range(len(a))
        ]
    )


def pairwise_ranking(a, p, n, distance="cosine", temperature=1.0):
    return _mean(
        [
            softplus(-((-dist(distance, a[i], p[i])) - (-dist(distance, a[i], n[i]))) / temperature)
            for i in range(len(a))
        ]
    )


# ---- online, labelled ---------------------------------------------------------------------


def triplet_semihard(labels, e, margin=1.0, distance="l2", fallback="hardest", refs=None):
    ref_labels, r = refs if refs is not None else (labels, e)
    terms = []
    for a in range(len(labels)):
        pos = [j for j in range(len(ref_labels)) if j != a and ref_labels[j] == labels[a]]
        neg = [j for j in range(len(ref_labels)) if ref_labels[j] != labels[a]]
        if not neg:
            continue
        for p in pos:
            d_ap = dist(distance, e[a], r[p])
            d_negs = [dist(distance, e[a], r[j]) for j in neg]
            farther = [d for d in d_negs if d > d_ap]
            d_an = (
                min(farther) if farther else (min(d_negs) if fallback == "hardest" else max(d_negs))
            )
            terms.append(max(0.0, d_ap - d_an + margin))
    return _mean(terms)


def triplet_hard(labels, e, margin=1.0, distance="l2", soft=False):
    terms = []
    for a in range(len(labels)):
        pos, neg = _split(labels, a)
        if not pos or not neg:
            continue
        gap = max(dist(distance, e[a], e[j]) for j in pos) - min(
            dist(distance, e[a], e[j]) for j in neg
        )
        # Hermans et al.'s soft margin ln(1 + exp(gap)) has no margin
        terms.append(softplus(gap) if soft else max(0.0, gap + margin))
    return _mean(terms)


def triplet_all(labels, e, margin=1.0, distance="l2"):
    total, active = 0.0, 0
    for a in range(len(labels)):
        pos, neg = _split(labels, a)
        for p in pos:
            for n in neg:
                v = dist(distance, e[a], e[p]) - dist(distance, e[a], e[n]) + margin
                if v > 0:
                    total += v
                    active += 1
    return total / active if active else 0.0


def npairs(labels, e, temperature=1.0):
    terms = []
    for a in range(len(labels)):
        pos, neg = _split(labels, a)
        for p in pos:
            num = math.exp(cos(e[a], e[p]) / temperature)
            den = num + sum(math.exp(cos(e[a], e[n]) / temperature) for n in neg)
            terms.append(-math.log(num / den))
    return _mean(terms)


def supcon(labels, e, temperature=0.1):
    terms = []
    n = len(labels)
    for i in range(n):
        pos, neg = _split(labels, i)
        if not pos or not neg:
            continue
        den = sum(math.exp(cos(e[i], e[a]) / temperature) for a in range(n) if a != i)
        terms.append(
            -np.mean([math.log(math.exp(cos(e[i], e[p]) / temperature) / den) for p in pos])
        )
    return _mean(terms)


def multi_similarity(labels, e, alpha=2.0, beta=50.0, base=0.5, epsilon=0.1):
    terms = []
    for i in range(len(labels)):
        pos, neg = _split(labels, i)
        if not pos or not neg:
            continue
        s = {j: cos(e[i], e[j]) for j in pos + neg}
        min_pos, max_neg = min(s[p] for p in pos), max(s[n] for n in neg)
        kept_neg = [n for n in neg if s[n] + epsilon > min_pos]
        kept_pos = [p for p in pos if s[p] - epsilon < max_neg]
        pos_term = math.log(1 + sum(math.exp(-alpha * (s[p] - base)) for p in kept_pos))
        neg_term = math.log(1 + sum(math.exp(beta * (s[n] - base)) for n in kept_neg))
        terms.append(pos_term / alpha + neg_term / beta)
    return _mean(terms)


def circle(labels, e, m=0.4, gamma=80.0):
    terms = []
    for i in range(len(labels)):
        pos, neg = _split(labels, i)
        if not pos or not neg:
            continue
        lp = [-gamma * max(0.0, 1 + m - cos(e[i], e[p])) * (cos(e[i], e[p]) - (1 - m)) for p in pos]
        ln = [gamma * max(0.0, cos(e[i], e[n]) + m) * (cos(e[i], e[n]) - m) for n in neg]
        terms.append(softplus(log_sum_exp(ln) + log_sum_exp(lp)))
    return _mean(terms)


def lifted_structure(labels, e, margin=1.0, distance="l2"):
    n = len(labels)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if labels[i] == labels[j]]
    terms = []
    for i, j in pairs:
        s = sum(
            math.exp(margin - dist(distance, e[i], e[k]))
            for k in range(n)
            if labels[k] != labels[i]
        )
        s += sum(
            math.exp(margin - dist(distance, e[j], e[k]))
            for k in range(n)
            if labels[k] != labels[j]
        )
        jij = (math.log(s) if s > 0 else -math.inf) + dist(distance, e[i], e[j])
        terms.append(max(0.0, jij) ** 2)
    return sum(terms) / (2 * len(pairs)) if pairs else 0.0


def soft_nn(labels, e, temperature=0.1, distance="squared_l2"):
    terms = []
    n = len(labels)
    for i in range(n):
        pos, neg = _split(labels, i)
        if not pos or not neg:
            continue
        num = sum(math.exp(-dist(distance, e[i], e[j]) / temperature) for j in pos)
        den = sum(math.exp(-dist(distance, e[i], e[k]) / temperature) for k in range(n) if k != i)
        terms.append(-math.log(num / den))
    return _mean(terms)


def proxy_anchor(labels, e, proxies, alpha=32.0, delta=0.1):
    c = len(proxies)
    with_pos = [k for k in range(c) if k in set(labels)]
    pos_term = _mean(
        [
            math.log(
                1
                + sum(
                    math.exp(-alpha * (cos(e[i], proxies[k]) - delta))
                    for i in range(len(labels))
                    if labels[i] == k
                )
            )
            for k in with_pos
        ]
    )
    neg_term = float(
        np.mean(
            [
                math.log(
                    1
                    + sum(
                        math.exp(alpha * (cos(e[i], proxies[k]) + delta))
                        for i in range(len(labels))
                        if labels[i] != k
                    )
                )
                for k in range(c)
            ]
        )
    )
    return pos_term + neg_term


def arcface(labels, e, centres, scale=64.0, margin=0.5):
    out = []
    for y, x in zip(labels, e, strict=True):
        cosines = [cos(x, w) for w in centres]
        logits = []
        for k, c in enumerate(cosines):
            if k == y:
                c = min(1.0, max(-1.0, c))
                target = (
                    math.cos(math.acos(c) + margin)
                    if c > math.cos(math.pi - margin)
                    else c - margin * math.sin(margin)
                )
                logits.append(scale * target)
            else:
                logits.append(scale * c)
        out.append(log_sum_exp(logits) - logits[y])
    return float(np.mean(out))
