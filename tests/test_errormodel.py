"""The sequencer error/quality model: files, learning from real reads, and what ``apply`` draws.

Statistical checks compare realized figures with the model's own expectations; tolerances are
5 standard errors, counting both the sampled reads and the finite bank of quality strings.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pysam
import pytest

from synthlib.errors import ModelError
from synthlib.reads.errormodel import (
    BANK_SIZE,
    FORMAT,
    ErrorModel,
    ReadProfile,
    _hit_cycles,
    benchmark_apply,
    preset_names,
)
from synthlib.reads.learn import (
    build_novaseq_binned_2x150,
    build_perfect_model,
    learn_model,
    main_learn,
)
from synthlib.resources import DATA_DIR

REFS = DATA_DIR / "references"
MINIGIAB_BAM = REFS / "grch37-chr22-minigiab" / "NA12878.chr22.tiny.bam"
MINIGIAB_FA = REFS / "grch37-chr22-minigiab" / "q.fa"
SMALL_BAM = REFS / "grch37-chr20-demo" / "NA12878_small.bam"
ACGT = np.frombuffer(b"ACGT", dtype=np.uint8)
N_READS = 20_000


def random_bases(seed: int, n: int, length: int) -> np.ndarray:
    return ACGT[np.random.default_rng(seed).integers(0, 4, size=(n, length))]


@pytest.fixture(scope="module")
def learned() -> ErrorModel:
    return learn_model(path=MINIGIAB_BAM)


# ------------------------------------------------------------------------------- presets
def test_presets_ship_and_describe() -> None:
    assert {"illumina-2x150", "illumina-novaseq-binned-2x150", "perfect"} <= set(preset_names())
    for name in ("illumina-2x150", "illumina-novaseq-binned-2x150"):
        model = ErrorModel.load(name)
        d = model.describe()
        assert d["format"] == FORMAT and d["read_length"] == 150
        for r in ("1", "2"):
            assert len(d["reads"][r]["mean_quality_per_cycle"]) == 150
            assert 0.0005 < d["reads"][r]["expected_mismatch_rate"] < 0.02
        # Read 2 is worse than read 1, and quality drops toward the 3' end.
        assert d["reads"]["2"]["mean_quality"] < d["reads"]["1"]["mean_quality"]
        for r in (1, 2):
            q = model.expected_mean_quality(r)
            assert q[-20:].mean() < q[10:30].mean()
            e = model.expected_error_rate(r)
            assert e[-20:].mean() > e[10:30].mean()


def test_unknown_preset_names_the_choices() -> None:
    with pytest.raises(ModelError, match="illumina-2x150"):
        ErrorModel.load("no-such-model")


def test_novaseq_preset_is_its_builder() -> None:
    shipped = ErrorModel.load("illumina-novaseq-binned-2x150")
    built = build_novaseq_binned_2x150()
    assert shipped.quality_values.tolist() == [2, 12, 23, 37]
    np.testing.assert_allclose(shipped.expected_mean_quality(2), built.expected_mean_quality(2),
                               atol=1e-8)


# ----------------------------------------------------------------------------- files
def test_save_load_round_trip(tmp_path: Path) -> None:
    model = ErrorModel.load("illumina-2x150")
    for name in ("m.json", "m.json.gz"):
        path = model.save(tmp_path / name)
        back = ErrorModel.load(path)
        assert back.name == model.name and back.source == model.source
        assert back.quality_values.tolist() == model.quality_values.tolist()
        for r in (1, 2):
            a, b = model.reads[r], back.reads[r]
            for fld in ("initial", "transitions", "substitution", "no_call",
                        "insertion_lengths", "deletion_lengths"):
                np.testing.assert_allclose(getattr(a, fld), getattr(b, fld), atol=1e-9)
            assert a.insertion_rate == b.insertion_rate and a.deletion_rate == b.deletion_rate
        # A second round trip is exact (same bytes, same draws).
        again = ErrorModel.load(back.save(tmp_path / f"again-{name}"))
        assert json.dumps(again.to_dict()) == json.dumps(back.to_dict())
        bases = random_bases(1, 500, 150)
        out1 = back.apply(rng=np.random.default_rng(5), bases=bases, read_number=1)
        out2 = again.apply(rng=np.random.default_rng(5), bases=bases, read_number=1)
        assert all(np.array_equal(x, y) for x, y in zip(out1, out2, strict=True))
    with gzip.open(tmp_path / "m.json.gz", "rt") as fh:
        assert json.load(fh)["format"] == FORMAT


def _mutations():
    def drop(key):
        def f(d):
            del d["reads"]["2"][key]
        return f

    def setf(path, value):
        def f(d):
            obj = d
            for k in path[:-1]:
                obj = obj[k]
            obj[path[-1]] = value
        return f

    return [
        ("format", setf(["format"], "synthlib.errormodel/99")),
        ("format", lambda d: d.pop("format")),
        ("read_length", lambda d: d.pop("read_length")),
        ("quality_values", setf(["quality_values"], [40, 30])),
        ("reads.2.substitution", drop("substitution")),
        ("reads.2.no_call", drop("no_call")),
        ("reads.1.transitions", lambda d: d["reads"]["1"]["transitions"].pop()),
        ("reads.1.initial", lambda d: d["reads"]["1"]["initial"].__setitem__(0, -0.5)),
        ("reads.1.insertion_rate", setf(["reads", "1", "insertion_rate"], "often")),
        ("reads.2", lambda d: d["reads"].pop("2")),
    ]


@pytest.mark.parametrize(("field", "mutate"), _mutations(), ids=[f for f, _ in _mutations()])
def test_bad_files_name_file_and_field(tmp_path: Path, field: str, mutate) -> None:
    doc = build_perfect_model(read_length=5).to_dict()
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelError) as exc:
        ErrorModel.load(path)
    assert str(path) in str(exc.value) and field in str(exc.value)


def test_unreadable_files(tmp_path: Path) -> None:
    path = tmp_path / "junk.json"
    path.write_text("{not json")
    with pytest.raises(ModelError, match="junk.json"):
        ErrorModel.load(path)
    path.write_text("[1, 2]")
    with pytest.raises(ModelError, match="format"):
        ErrorModel.load(path)


# ---------------------------------------------------------------------------- learning
def _bam_quality_matrix(path: Path, read2: bool, length: int) -> np.ndarray:
    rows = []
    with pysam.AlignmentFile(str(path)) as bam:
        for read in bam.fetch(until_eof=True):
            if read.is_secondary or read.is_supplementary or read.is_read2 != read2:
                continue
            q = np.asarray(read.query_qualities, dtype=float)
            if q.size != length or any(op == 5 for op, _ in read.cigartuples or []):
                continue
            rows.append(q[::-1] if read.is_reverse else q)
    return np.array(rows)


def test_learn_from_minigiab_bam(learned: ErrorModel) -> None:
    m = learned
    assert m.read_length == 151
    # HiSeq X 7-level binning; its N calls carry Q6.
    assert m.quality_values.tolist() == [6, 15, 22, 27, 33, 37, 40]
    assert m.reads[1].no_call[0] == 1.0 and m.reads[1].no_call[1:].max() == 0.0
    assert m.source["substitutions"] == "alignment"
    for r in (1, 2):
        data = _bam_quality_matrix(MINIGIAB_BAM, r == 2, 151)
        assert data.shape[0] > 1500
        per_cycle = data.mean(axis=0)
        expected = m.expected_mean_quality(r)
        # Unpooled per-cycle transitions reproduce the data's per-cycle marginals (up to the
        # one pseudo-observation per row); the data's own standard error is ~0.15.
        se = data.std(axis=0) / np.sqrt(data.shape[0])
        assert np.all(np.abs(expected - per_cycle) < 2 * se + 0.05)
        # Quality bins are ordered by their learned error rates (high quality, fewer errors).
        err = m.reads[r].error_by_bin(given_called=True).mean(axis=1)[1:]
        assert err[0] > err[-1] * 20
    # Mismatches counted are in the range of Illumina error, not of variants (~0.1-1%).
    used = m.source["reads_used"]["1"]
    assert 0.001 < used["mismatches"] / used["aligned_bases"] < 0.01
    assert 0 < m.reads[1].insertion_rate < 1e-3 and 0 < m.reads[2].deletion_rate < 1e-3


def test_learn_masks_real_variants() -> None:
    """Bases at sites most reads disagree on (GIAB variants) are not counted as errors."""
    m = learn_model(path=MINIGIAB_BAM)
    raw = 0
    with pysam.AlignmentFile(str(MINIGIAB_BAM)) as bam:
        for read in bam.fetch(until_eof=True):
            if (read.is_read1 and not read.is_secondary and not read.is_supplementary
                    and read.mapping_quality >= 20 and not any(
                        op == 5 for op, _ in read.cigartuples)):
                raw += sum(1 for _, _, b in read.get_aligned_pairs(matches_only=True,
                                                                  with_seq=True)
                           if b.islower() and b != "n")
    learned_mm = m.source["reads_used"]["1"]["mismatches"]
    assert learned_mm < raw
    # 14 GIAB variants at ~40x, about half the reads carry a heterozygous one.
    assert raw - learned_mm > 50


def test_learn_with_reference_matches_md(learned: ErrorModel) -> None:
    with_ref = learn_model(path=MINIGIAB_BAM, reference=MINIGIAB_FA)
    assert with_ref.source["reads_used"] == learned.source["reads_used"]
    np.testing.assert_allclose(with_ref.reads[2].substitution, learned.reads[2].substitution)


def test_learn_full_range_qualities_are_binned() -> None:
    m = learn_model(path=SMALL_BAM)
    assert m.read_length == 101
    qv = m.quality_values
    assert qv.size == 8 and np.all(np.diff(qv) > 0)
    assert qv[0] == 2 and m.reads[1].no_call[0] > 0.5  # this run wrote N at Q2


def test_learn_from_fastq(tmp_path: Path) -> None:
    fq = tmp_path / "r1.fastq.gz"
    with pysam.AlignmentFile(str(SMALL_BAM)) as bam, gzip.open(fq, "wt") as out:
        for read in bam.fetch(until_eof=True):
            if read.is_read1 and not read.is_secondary and not read.is_supplementary:
                out.write(f"@{read.query_name}\n{read.query_sequence}\n+\n"
                          f"{pysam.qualities_to_qualitystring(read.query_qualities)}\n")
    m = learn_model(path=fq, max_reads=300)
    assert m.source["substitutions"] == "phred-definition"
    assert m.source["reads_used"]["1"]["reads"] == 300
    assert "copy" in m.source["read2"]
    np.testing.assert_allclose(m.expected_mean_quality(1), m.expected_mean_quality(2))
    # Phred definition: a Q20-ish bin errs about 1%.
    err = m.reads[1].error_by_bin(given_called=True)[:, 0]
    np.testing.assert_allclose(err, np.minimum(10 ** (-m.quality_values / 10), 0.75), rtol=1e-9)


def test_learn_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="missing.bam"):
        learn_model(path=tmp_path / "missing.bam")
    bad = tmp_path / "bad.bam"
    bad.write_bytes(b"not a bam")
    with pytest.raises(ModelError, match="bad.bam"):
        learn_model(path=bad)


def test_main_learn(tmp_path: Path) -> None:
    out = tmp_path / "model.json"
    summary = main_learn(input=str(MINIGIAB_BAM), out=str(out), reference=None, max_reads=1000)
    assert summary["read_length"] == 151 and summary["out"] == str(out)
    assert summary["source"]["reads_used"]["1"]["reads"] + summary["source"]["reads_used"][
        "2"]["reads"] == 1000
    assert ErrorModel.load(out).describe() == {k: v for k, v in summary.items()
                                                if k not in ("out", "source")}


# ------------------------------------------------------------------------------ apply
@pytest.mark.parametrize("name", ["illumina-2x150", "illumina-novaseq-binned-2x150"])
@pytest.mark.parametrize("read_number", [1, 2])
def test_apply_matches_expectations(name: str, read_number: int) -> None:
    model = ErrorModel.load(name)
    n, length = N_READS, model.read_length
    bases = random_bases(read_number, n, length)
    before = bases.copy()
    out, quals = model.apply(rng=np.random.default_rng(11), bases=bases, read_number=read_number)
    assert np.array_equal(bases, before)  # input untouched
    assert out.dtype == np.uint8 and quals.dtype == np.uint8 and out.shape == quals.shape
    assert set(np.unique(quals)) <= set(model.quality_values.tolist())

    # Per-cycle mean quality: reads sample a bank of BANK_SIZE strings drawn from the chain.
    dist = model.cycle_bin_distribution(read_number)
    qv = model.quality_values.astype(float)
    mean = dist @ qv
    sd = np.sqrt(np.maximum(dist @ qv**2 - mean**2, 1e-12))
    se = sd * np.sqrt(1 / n + 1 / BANK_SIZE)
    z = (quals.mean(axis=0) - model.expected_mean_quality(read_number)) / se
    assert np.abs(z).max() < 5.0, f"worst cycle z = {np.abs(z).max():.2f}"

    # Substitutions (wrong base, not N) over all cycles, and no-calls.
    for realized, expected in (
        ((out != bases) & (out != ord("N")), model.expected_error_rate(read_number).sum()),
        (out == ord("N"), model.expected_no_call_rate(read_number).sum()),
    ):
        per_read = realized.sum(axis=1)
        var = per_read.var()
        tol = 5 * np.sqrt(n * var + n * n * var / BANK_SIZE) + 1e-9
        assert abs(per_read.sum() - n * expected) <= tol, (per_read.sum(), n * expected, tol)
    # Errors happen where the model says: mostly at low quality.
    wrong = (out != bases) & (out != ord("N"))
    if wrong.any():
        assert quals[wrong].mean() < quals.mean() - 3


@pytest.mark.parametrize("length", [150, 300])
def test_hit_cycles_equal_a_binary_search_of_the_row(length: int) -> None:
    """The guide-table lookup gives each hit the cycle a binary search over its bank row
    gives (the first whose cumulative hazard exceeds the target), N cells (no hazard) and
    targets next to a row's end included; 300 cycles take the 16-bit table."""
    model = ErrorModel.load("illumina-2x150").for_read_length(length)
    rng = np.random.default_rng(3)
    for read_number in (1, 2):
        bank = model._bank(read_number)
        cum = bank.cum_hazard.reshape(-1, length)
        assert (np.diff(cum, axis=1) == 0).any()  # rows with N cells are in the test
        rows = np.sort(rng.integers(0, BANK_SIZE, 20_000))
        rows = rows[bank.row_total[rows] > 0]
        u = np.concatenate([rng.random(rows.size - 200), 1 - rng.random(100) * 1e-9,
                            rng.random(100) * 1e-9])
        got = _hit_cycles(bank, rows, u, length)
        want = [np.searchsorted(cum[r], x * bank.row_total[r], side="right")
                for r, x in zip(rows, u, strict=True)]
        assert np.array_equal(got, np.minimum(want, length - 1))


def test_read2_differs_from_read1_as_modelled() -> None:
    model = ErrorModel.load("illumina-2x150")
    bases = random_bases(3, N_READS, 150)
    rng = np.random.default_rng(4)
    _, q1 = model.apply(rng=rng, bases=bases, read_number=1)
    o2, q2 = model.apply(rng=rng, bases=bases, read_number=2)
    gap = model.expected_mean_quality(1)[-50:].mean() - model.expected_mean_quality(2)[-50:].mean()
    assert gap > 1.0
    realized = q1[:, -50:].mean() - q2[:, -50:].mean()
    assert abs(realized - gap) < 0.5
    assert not np.array_equal(q1, q2)


def test_determinism() -> None:
    model = ErrorModel.load("illumina-2x150")
    bases = random_bases(7, 2000, 150)
    a = model.apply(rng=np.random.default_rng(42), bases=bases, read_number=2)
    b = ErrorModel.load("illumina-2x150").apply(rng=np.random.default_rng(42), bases=bases,
                                                 read_number=2)
    c = model.apply(rng=np.random.default_rng(43), bases=bases, read_number=2)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_perfect_model_changes_nothing() -> None:
    model = ErrorModel.load("perfect")
    bases = random_bases(8, 1000, 150)
    out, quals = model.apply(rng=np.random.default_rng(0), bases=bases, read_number=1)
    assert np.array_equal(out, bases) and np.all(quals == 40)


def test_wrong_base_follows_substitution_matrix() -> None:
    """A model where only A is misread, always as G, at 10%: the thinning must respect it."""
    sub = np.eye(4)[None].copy()
    sub[0, 0] = [0.9, 0.0, 0.1, 0.0]
    prof = ReadProfile(
        initial=np.ones(1), transitions=np.ones((99, 1, 1)), substitution=sub,
        insertion_rate=0.0, deletion_rate=0.0, insertion_lengths=np.ones(1),
        deletion_lengths=np.ones(1), no_call=np.zeros(1),
    )
    model = ErrorModel(name="a-to-g", quality_values=np.array([10]), reads={1: prof, 2: prof})
    bases = random_bases(9, 5000, 100)
    out, _ = model.apply(rng=np.random.default_rng(1), bases=bases, read_number=1)
    changed = out != bases
    assert np.all(bases[changed] == ord("A")) and np.all(out[changed] == ord("G"))
    n_a = int((bases == ord("A")).sum())
    assert abs(changed.sum() - 0.1 * n_a) < 5 * np.sqrt(n_a * 0.1 * 0.9)
    np.testing.assert_allclose(model.expected_error_rate(1), 0.025)


def test_input_n_and_checks() -> None:
    model = ErrorModel.load("illumina-2x150")
    bases = random_bases(10, 100, 150)
    bases[:, 5] = ord("N")
    out, quals = model.apply(rng=np.random.default_rng(0), bases=bases, read_number=1)
    assert model.no_call_quality == 6  # HiSeq X writes N at Q6
    assert np.all(out[:, 5] == ord("N")) and np.all(quals[:, 5] == 6)
    with pytest.raises(ValueError, match="for_read_length"):
        model.apply(rng=np.random.default_rng(0), bases=bases[:, :100], read_number=1)
    with pytest.raises(ValueError, match="read_number"):
        model.apply(rng=np.random.default_rng(0), bases=bases, read_number=3)
    with pytest.raises(TypeError):
        model.apply(rng=0, bases=bases, read_number=1)
    empty = model.apply(rng=np.random.default_rng(0), bases=bases[:0], read_number=1)
    assert empty[0].shape == (0, 150) and empty[1].shape == (0, 150)


def test_for_read_length() -> None:
    model = ErrorModel.load("illumina-2x150")
    short = model.for_read_length(100)
    assert short.read_length == 100 and model.for_read_length(100) is short
    np.testing.assert_allclose(short.expected_mean_quality(2), model.expected_mean_quality(2)[:100])
    long = model.for_read_length(250)
    np.testing.assert_allclose(long.expected_mean_quality(1)[:150], model.expected_mean_quality(1))
    out, quals = long.apply(rng=np.random.default_rng(0), bases=random_bases(1, 50, 250),
                            read_number=2)
    assert quals.shape == (50, 250)
    stretched = model.for_read_length(300, mode="stretch")
    q = stretched.expected_mean_quality(1)
    assert q.size == 300 and abs(q[0] - model.expected_mean_quality(1)[0]) < 1e-9
    assert model.for_read_length(150) is model


def test_benchmark_apply_reports_throughput() -> None:
    for name in ("illumina-2x150", "illumina-novaseq-binned-2x150"):
        res = benchmark_apply(model=name, n_reads=50_000, repeats=2)
        print(f"{name}: {res['reads_per_cpu_second']:,.0f} reads/CPU-s "
              f"({res['bases_per_cpu_second'] / 1e6:,.0f} Mbases/s), "
              f"bank build {res['bank_build_seconds']:.2f} s")
        assert res["reads_per_cpu_second"] > 0
