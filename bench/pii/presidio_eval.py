"""Presidio baseline for the PII benchmark (bench/pii/run).

Reads the labelled corpus (JSON lines: {"text", "spans": [{type, start,
end}]}, character offsets), runs Microsoft Presidio's AnalyzerEngine with
pattern recognizers for the same six types plus AnonymizerEngine with the
replace operator (the equivalent of bizos.pii_mask) over the first
--bytes of text, and prints one JSON object: throughput and per-type
true/false positives and false negatives (strict: type, start and end must
match a label).

No spaCy model is downloaded: the NLP engine is a blank Indonesian spaCy
pipeline (tokenizer only) whose lowercased tokens serve as lemmas, so
Presidio's context enhancement (LemmaContextAwareEnhancer) still sees the
keywords before a match.
"""

import argparse
import json
import sys
import time

import spacy
from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine
from presidio_analyzer.predefined_recognizers import CreditCardRecognizer
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig

LANG = "id"
TYPES = ["NIK", "NPWP", "PHONE", "EMAIL", "CARD", "BANK_ACCOUNT"]


class BlankNlpEngine(NlpEngine):
    """Tokenizer-only NLP engine (spacy.blank): no model download."""

    def __init__(self):
        self.nlp = spacy.blank(LANG)

    def load(self):
        pass

    def is_loaded(self):
        return True

    def process_text(self, text, language):
        doc = self.nlp(text)
        return NlpArtifacts(
            entities=[],
            tokens=doc,
            tokens_indices=[t.idx for t in doc],
            lemmas=[t.text.lower() for t in doc],
            nlp_engine=self,
            language=language,
        )

    def process_batch(self, texts, language, batch_size=1, n_process=1, **kwargs):
        for t in texts:
            yield t, self.process_text(t, language)

    def is_stopword(self, word, language):
        return False

    def is_punct(self, word, language):
        return False

    def get_supported_entities(self):
        return []

    def get_supported_languages(self):
        return [LANG]


def recognizers():
    """Pattern recognizers for the six types, as a Presidio user would write
    them for Indonesia (Presidio ships none for NIK, NPWP or Indonesian phone
    formats), with the same context words as bizos."""
    province = r"(?:1[1-9]|21|3[1-6]|5[1-3]|6[1-5]|7[1-6]|8[12]|9[1-6])"
    day = r"(?:0[1-9]|[12][0-9]|3[01]|4[1-9]|[56][0-9]|7[01])"
    month = r"(?:0[1-9]|1[0-2])"
    sep = r"[ .-]?"
    return [
        PatternRecognizer(
            supported_entity="NIK",
            supported_language=LANG,
            patterns=[
                Pattern(
                    "nik",
                    rf"\b{province}[0-9]{{2}}{sep}[0-9]{{2}}{sep}{day}{month}[0-9]{{2}}{sep}[0-9]{{4}}\b",
                    0.5,
                )
            ],
            context=["nik", "ktp", "kependudukan"],
        ),
        PatternRecognizer(
            supported_entity="NPWP",
            supported_language=LANG,
            patterns=[
                Pattern("npwp_dotted", r"\b[0-9]{2}\.[0-9]{3}\.[0-9]{3}\.[0-9]-[0-9]{3}\.[0-9]{3}\b", 0.6),
                Pattern("npwp_plain", r"\b0?[0-9]{15}\b", 0.1),
            ],
            context=["npwp"],
        ),
        PatternRecognizer(
            supported_entity="PHONE",
            supported_language=LANG,
            patterns=[
                Pattern("mobile", r"(?:\+62|\b62|\b0)[ -]?8[1-35-9][0-9]{1,2}[ .-]?[0-9]{3,4}[ .-]?[0-9]{3,5}\b", 0.6),
                Pattern(
                    "landline",
                    r"(?:\+62[ -]?|\(0|\b0)(?:21|22|24|31|61|[2-79][0-9]{2})\)?[ .-]?[0-9]{3,4}[ .-]?[0-9]{1,5}\b",
                    0.4,
                ),
            ],
            context=["hp", "wa", "whatsapp", "telp", "tlp", "telepon", "phone", "hubungi", "kontak"],
        ),
        PatternRecognizer(
            supported_entity="EMAIL",
            supported_language=LANG,
            patterns=[
                Pattern("email", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b", 0.9)
            ],
            context=["email", "e-mail", "surel"],
        ),
        CreditCardRecognizer(
            supported_language=LANG,
            supported_entity="CARD",
            context=["kartu", "kredit", "card", "visa", "mastercard", "cc"],
        ),
        PatternRecognizer(
            supported_entity="BANK_ACCOUNT",
            supported_language=LANG,
            patterns=[Pattern("account", r"\b[0-9]{3}[ .-]?[0-9]{3}[ .-]?[0-9]{4,9}\b", 0.05)],
            context=["rekening", "rek", "norek", "account", "acc"],
        ),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--bytes", type=int, default=5_000_000)
    ap.add_argument("--threshold", type=float, default=0.4)
    args = ap.parse_args()

    registry = RecognizerRegistry(supported_languages=[LANG])
    for r in recognizers():
        registry.add_recognizer(r)
    analyzer = AnalyzerEngine(
        registry=registry,
        nlp_engine=BlankNlpEngine(),
        supported_languages=[LANG],
        default_score_threshold=args.threshold,
    )
    anonymizer = AnonymizerEngine()
    operators = {t: OperatorConfig("replace", {"new_value": f"[REDACTED_{t}]"}) for t in TYPES}

    docs = []
    total = 0
    with open(args.corpus, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            docs.append(d)
            total += len(d["text"].encode("utf-8"))
            if total >= args.bytes:
                break

    counts = {t: {"tp": 0, "fp": 0, "fn": 0} for t in TYPES}
    start = time.perf_counter()
    results = []
    for d in docs:
        found = analyzer.analyze(text=d["text"], language=LANG, entities=TYPES)
        anonymizer.anonymize(text=d["text"], analyzer_results=found, operators=operators)
        results.append(found)
    elapsed = time.perf_counter() - start

    for d, found in zip(docs, results):
        # Presidio may return overlapping results; keep the best per region
        # as its anonymizer does (highest score, then longest).
        kept = []
        for r in sorted(found, key=lambda r: (-r.score, -(r.end - r.start), r.start)):
            if all(r.end <= k.start or r.start >= k.end for k in kept):
                kept.append(r)
        pred = {(r.entity_type, r.start, r.end) for r in kept}
        truth = {(s["type"], s["start"], s["end"]) for s in d["spans"]}
        for t in truth - pred:
            counts[t[0]]["fn"] += 1
        for p in pred - truth:
            counts[p[0]]["fp"] += 1
        for p in pred & truth:
            counts[p[0]]["tp"] += 1

    json.dump(
        {"docs": len(docs), "bytes": total, "seconds": elapsed, "mb_per_s": total / 1e6 / elapsed, "counts": counts},
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
