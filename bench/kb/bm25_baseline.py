#!/usr/bin/env python3
"""BM25 baselines of `scripts/bench kb` (bench/kb/run, tests/src/bin/kb-bench.rs).

Reads the tokens PostgreSQL made (every chunk's tsvector and every query's
to_tsvector('simple', ...), each lexeme repeated as often as it has
positions), so both sides rank exactly the same tokens, and writes for each
query the `depth` best chunks of two rankings:

  rank_bm25   rank_bm25.BM25Okapi(k1=1.2, b=0.75), as published on PyPI
              (idf = ln((N - df + 0.5) / (df + 0.5)), negative values
              replaced by 0.25 x the mean idf)
  lucene      the formula kb_search documents (idf = ln(1 + (N - df + 0.5) /
              (df + 0.5))), written out here: a check that kb_search's
              lexical scores are that formula

Input (JSON file): {"chunks": [[id, [token, ...]], ...],
                    "queries": [[qid, [token, ...]], ...], "depth": 100}
Output (JSON on stdout): {"rank_bm25": {qid: [[id, score], ...]},
                          "lucene": {qid: [[id, score], ...]},
                          "rank_bm25_version": "..."}
Ties are broken by input order of the chunks.
"""

import json
import math
import sys
from collections import Counter
from importlib.metadata import version

from rank_bm25 import BM25Okapi

K1 = 1.2
B = 0.75


def lucene_scores(docs, query):
    """BM25 with Lucene's idf over `docs` (lists of tokens) for `query`."""
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    df = Counter()
    for d in docs:
        df.update(set(d))
    tfs = [Counter(d) for d in docs]
    scores = [0.0] * n
    for term in query:  # a repeated query term counts again, as in kb_search
        f = df.get(term, 0)
        if f == 0:
            continue
        idf = math.log(1 + (n - f + 0.5) / (f + 0.5))
        for i, tf in enumerate(tfs):
            t = tf.get(term)
            if t:
                scores[i] += idf * t * (K1 + 1) / (t + K1 * (1 - B + B * len(docs[i]) / avgdl))
    return scores


def top(ids, scores, depth):
    order = sorted(range(len(ids)), key=lambda i: (-scores[i], i))
    return [[ids[i], float(scores[i])] for i in order[:depth] if scores[i] > 0]


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        data = json.load(f)
    ids = [c[0] for c in data["chunks"]]
    docs = [c[1] for c in data["chunks"]]
    depth = int(data.get("depth", 100))
    okapi = BM25Okapi(docs, k1=K1, b=B)
    out = {"rank_bm25": {}, "lucene": {}, "rank_bm25_version": version("rank_bm25")}
    for qid, tokens in data["queries"]:
        out["rank_bm25"][str(qid)] = top(ids, list(okapi.get_scores(tokens)), depth)
        out["lucene"][str(qid)] = top(ids, lucene_scores(docs, tokens), depth)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
