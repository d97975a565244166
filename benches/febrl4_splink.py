"""splink 5 (DuckDB) on the FEBRL4 CSVs benches/febrl4.sh exported: the same
fields and comparable blocking as idsync's bench, u by random sampling,
m by EM sessions on two blocking rules, then prediction. Prints pairwise
precision, recall and F1 against the true links (rec-N-org <-> rec-N-dup-0)
at several match-probability thresholds, and the times of training and of
prediction.

    python benches/febrl4_splink.py target/febrl4
"""

import logging
import sys
import time

import pandas as pd
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

logging.getLogger("splink").setLevel(logging.ERROR)
d = sys.argv[1] if len(sys.argv) > 1 else "target/febrl4"
a = pd.read_csv(f"{d}/a.csv", dtype=str)
b = pd.read_csv(f"{d}/b.csv", dtype=str)

settings = SettingsCreator(
    link_type="link_only",
    unique_id_column_name="rec_id",
    blocking_rules_to_generate_predictions=[
        block_on("date_of_birth"),
        block_on("soc_sec_id"),
        block_on("given_name", "surname"),
        block_on("postcode", "street_number"),
        block_on("substr(surname, 1, 3)", "substr(suburb, 1, 3)"),
    ],
    comparisons=[
        cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
        cl.NameComparison("surname").configure(term_frequency_adjustments=True),
        cl.ExactMatch("street_number"),
        cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
        cl.JaroWinklerAtThresholds("address_2", [0.9, 0.7]),
        cl.JaroWinklerAtThresholds("suburb", [0.9, 0.7]).configure(
            term_frequency_adjustments=True
        ),
        cl.DamerauLevenshteinAtThresholds("postcode", [1]),
        cl.ExactMatch("state"),
        cl.DateOfBirthComparison(
            "date_of_birth", input_is_string=True, datetime_format="%Y%m%d"
        ),
        cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
    ],
    retain_intermediate_calculation_columns=False,
    retain_matching_columns=False,
)

t0 = time.perf_counter()
db = DuckDBAPI()
linker = Linker([db.register(a), db.register(b)], settings, log_level=logging.ERROR)
linker.training.estimate_probability_two_random_records_match(
    [block_on("soc_sec_id", "date_of_birth"), block_on("given_name", "surname", "date_of_birth")],
    recall=0.8,
)
linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=42)
linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
linker.training.estimate_parameters_using_expectation_maximisation(block_on("soc_sec_id"))
t1 = time.perf_counter()
pred = linker.inference.predict(threshold_match_probability=0.01).as_pandas_dataframe()
t2 = time.perf_counter()


def person(rec_id):
    return rec_id.split("-")[1]


links = set(person(x) for x in a["rec_id"]) & set(person(x) for x in b["rec_id"])
pred["true"] = [
    person(l) == person(r) for l, r in zip(pred["rec_id_l"], pred["rec_id_r"])
]
print(f"splink {__import__('splink').__version__}: {len(pred)} pairs scored above 0.01")
for t in (0.5, 0.9, 0.99):
    p = pred[pred["match_probability"] >= t]
    tp = int(p["true"].sum())
    fp = len(p) - tp
    precision = tp / max(len(p), 1)
    recall = tp / max(len(links), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-300)
    print(
        f"splink at p >= {t}: precision {precision:.4f}  recall {recall:.4f}  F1 {f1:.4f}  "
        f"({tp} true, {fp} false)"
    )
print(f"splink predict {t2 - t1:.3f} s; training {t1 - t0:.3f} s; together {t2 - t0:.3f} s")
