"""Sequencer error/quality model: per-cycle Markov qualities, quality-dependent substitutions.

A model holds, separately for read 1 and read 2:

* the distribution of the quality bin at cycle 0 and, for every later cycle, a transition matrix
  over quality bins given the previous cycle's bin (position and previous-quality dependence);
* a substitution matrix per quality bin: given the true base, the probability of each called base;
* the probability that a base of each quality bin is a no-call (``N``; HiSeq X writes N at Q6,
  NovaSeq at Q2);
* indel error rates and length distributions (stored for the simulator; ``apply`` ignores them).

``apply`` is the read simulator's hot path. It never draws one random number per base:

* qualities come from a bank of quality strings generated once per model (fixed seed derived
  from the model content, cached on the object); a read costs one row gather;
* substitution positions are the arrivals of a unit-rate Poisson process on each bank row's
  cumulative hazard ``H = sum(-log(1 - p_max))``, which hits cycle ``c`` with probability exactly
  ``p_max(c)`` independently of the other cycles; each hit is then kept with probability
  ``p(true base) / p_max`` (thinning) and given a wrong base from the substitution matrix. The
  work is proportional to the number of errors, not of bases.

The file format (JSON, ``"format": "synthlib.errormodel/1"``) is documented in
``synthlib/data/models/README.md``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError

__all__ = [
    "FORMAT",
    "BASES",
    "MODELS_DIR",
    "N_QUALITY",
    "BANK_SIZE",
    "ReadProfile",
    "ErrorModel",
    "preset_names",
    "benchmark_apply",
]

FORMAT = "synthlib.errormodel/1"
BASES = "ACGT"
MODELS_DIR = Path(__file__).resolve().parent.parent / "data" / "models"
N_QUALITY = 2
"""Quality given to input ``N`` bases (Illumina writes ``#``, Q2, for no-calls)."""

BANK_SIZE = 8192
"""Quality strings pre-generated per model and read number (rows sampled by ``apply``; at
most 2**16, so a row number fits uint16)."""
# p = 1 would make the hazard infinite; the cap only matters for bins at Q0.
_P_CAP = 0.999
_ROUND = 10  # decimals kept in files; save -> load -> save is byte-identical
_SUM_TOL = 1e-6

# ASCII -> base code 0..3, 4 for anything else (N, lowercase is not expected here).
_CODE = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate(BASES):
    _CODE[ord(_b)] = _i
_ASCII = np.frombuffer(BASES.encode(), dtype=np.uint8)


@dataclass(frozen=True)
class ReadProfile:
    """The model of one read (R1 or R2); K quality bins, L cycles.

    Attributes
    ----------
    initial
        float64 (K,): distribution of the quality bin at cycle 0.
    transitions
        float64 (L-1, K, K): ``transitions[c, i, j]`` = P(bin j at cycle c+1 | bin i at cycle c).
    substitution
        float64 (K, 4, 4): ``substitution[k, t, o]`` = P(called base o | true base t, bin k),
        bases in ``ACGT`` order; rows sum to 1 (the diagonal is the probability of no error).
    insertion_rate, deletion_rate
        Indel error events per sequenced base.
    insertion_lengths, deletion_lengths
        float64 (M,): P(length = m + 1).
    no_call
        float64 (K,): P(the base is called N | bin). The substitution matrix describes the
        bases that are not N.
    """

    initial: np.ndarray
    transitions: np.ndarray
    substitution: np.ndarray
    insertion_rate: float
    deletion_rate: float
    insertion_lengths: np.ndarray
    deletion_lengths: np.ndarray
    no_call: np.ndarray

    def __post_init__(self) -> None:
        for name in ("initial", "transitions", "substitution", "insertion_lengths",
                     "deletion_lengths", "no_call"):
            arr = np.array(getattr(self, name), dtype=np.float64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def n_cycles(self) -> int:
        return self.transitions.shape[0] + 1

    def cycle_bin_distribution(self) -> np.ndarray:
        """float64 (L, K): the marginal distribution of the quality bin at each cycle."""
        out = np.empty((self.n_cycles, self.initial.size))
        out[0] = self.initial
        for c in range(self.n_cycles - 1):
            out[c + 1] = out[c] @ self.transitions[c]
        return out

    def error_by_bin(self, *, given_called: bool = False) -> np.ndarray:
        """float64 (K, 4): P(a wrong base, not N | bin, true base).

        With ``given_called`` the probability is conditional on the base not being N.
        """
        err = 1.0 - np.einsum("ktt->kt", self.substitution)
        return err if given_called else err * (1.0 - self.no_call)[:, None]


@dataclass(frozen=True)
class _Bank:
    """Pre-generated quality strings of one read number and the tables ``apply`` needs."""

    quals: np.ndarray  # uint8 (B, L) phred
    n_ptr: np.ndarray  # int64 (B+1,) row i's no-call cycles are n_cycles[n_ptr[i]:n_ptr[i+1]]
    n_cycles: np.ndarray  # int64 (M,)
    bins: np.ndarray  # uint8 (B, L)
    cum_hazard: np.ndarray  # float64 (B*L,) each row's cumulative hazard through each cycle
    row_total: np.ndarray  # float64 (B,) hazard of each row
    guide: np.ndarray  # uint8/16 (B*L,) row r, bucket g: first cycle past g/L of row r's hazard
    accept: np.ndarray  # float64 (K, 5) P(keep a hit | bin, true base code)
    wrong_cum: np.ndarray  # float64 (K, 5, 4) cumulative P(called base | error, bin, true)


@dataclass
class ErrorModel:
    """A sequencer error/quality model for paired reads (see the module docstring).

    Attributes
    ----------
    name
        Short name (a preset's file stem, or given when learning).
    quality_values
        int (K,): the Phred value emitted for each bin, strictly increasing, 0..93.
    reads
        ``{1: ReadProfile, 2: ReadProfile}``, all with the same number of cycles.
    description
        One paragraph saying what the model is.
    source
        Provenance: how it was built (input file, reads used, parameters).
    """

    name: str
    quality_values: np.ndarray
    reads: dict[int, ReadProfile]
    description: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    _banks: dict[int, _Bank] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lengths: dict[tuple[int, str], ErrorModel] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        qv = np.asarray(self.quality_values, dtype=np.int64)
        qv.setflags(write=False)
        self.quality_values = qv
        if set(self.reads) != {1, 2}:
            raise ModelError("a model needs profiles for reads 1 and 2", where=self.name)
        lengths = {p.n_cycles for p in self.reads.values()}
        if len(lengths) != 1:
            raise ModelError("read 1 and read 2 profiles have different lengths", where=self.name)

    # ----------------------------------------------------------------------------- basics
    @property
    def read_length(self) -> int:
        """Number of cycles L the model describes."""
        return self.reads[1].n_cycles

    @property
    def n_bins(self) -> int:
        return int(self.quality_values.size)

    def _profile(self, read_number: int) -> ReadProfile:
        if read_number not in (1, 2):
            raise ValueError(f"read_number must be 1 or 2, got {read_number!r}")
        return self.reads[read_number]

    def cycle_bin_distribution(self, read_number: int) -> np.ndarray:
        """float64 (L, K): marginal probability of each quality bin at each cycle."""
        return self._profile(read_number).cycle_bin_distribution()

    def expected_mean_quality(self, read_number: int) -> np.ndarray:
        """float64 (L,): expected Phred quality at each cycle (exact, from the Markov chain)."""
        return self.cycle_bin_distribution(read_number) @ self.quality_values.astype(np.float64)

    def expected_error_rate(
        self, read_number: int, *, base_freqs: np.ndarray | None = None
    ) -> np.ndarray:
        """float64 (L,): expected substitution rate (wrong base, not N) at each cycle.

        Parameters
        ----------
        read_number
            1 or 2.
        base_freqs
            float (4,): composition of the true bases (ACGT); uniform when omitted.
        """
        prof = self._profile(read_number)
        freqs = np.full(4, 0.25) if base_freqs is None else np.asarray(base_freqs, np.float64)
        if freqs.shape != (4,) or np.any(freqs < 0) or not np.isclose(freqs.sum(), 1.0):
            raise ValueError("base_freqs must be 4 non-negative numbers summing to 1")
        return prof.cycle_bin_distribution() @ (prof.error_by_bin() @ freqs)

    def expected_no_call_rate(self, read_number: int) -> np.ndarray:
        """float64 (L,): expected fraction of bases called N at each cycle."""
        prof = self._profile(read_number)
        return prof.cycle_bin_distribution() @ prof.no_call

    @property
    def no_call_quality(self) -> int:
        """The quality given to input N bases: that of the bin most often called N (else Q2)."""
        no_call = self.reads[1].no_call
        if no_call.max() <= 0:
            return N_QUALITY
        return int(self.quality_values[int(np.argmax(no_call))])

    def describe(self) -> dict[str, Any]:
        """Headline figures: per-cycle mean quality per read, expected mismatch rate, indels."""
        out: dict[str, Any] = {
            "format": FORMAT,
            "name": self.name,
            "read_length": self.read_length,
            "quality_values": self.quality_values.tolist(),
            "reads": {},
        }
        rates = []
        for r in (1, 2):
            prof = self.reads[r]
            mq = self.expected_mean_quality(r)
            er = self.expected_error_rate(r)
            dist = prof.cycle_bin_distribution()
            rates.append(float(er.mean()))
            out["reads"][str(r)] = {
                "mean_quality": round(float(mq.mean()), 3),
                "mean_quality_per_cycle": [round(float(x), 2) for x in mq],
                "fraction_q30": round(float(dist[:, self.quality_values >= 30].sum(1).mean()), 4),
                "expected_mismatch_rate": float(f"{er.mean():.4g}"),
                "expected_n_rate": float(f"{self.expected_no_call_rate(r).mean():.4g}"),
                "mismatch_rate_first_last_cycle": [float(f"{er[0]:.4g}"), float(f"{er[-1]:.4g}")],
                "insertion_rate": prof.insertion_rate,
                "deletion_rate": prof.deletion_rate,
            }
        out["expected_mismatch_rate"] = float(f"{np.mean(rates):.4g}")
        return out

    # ------------------------------------------------------------------ read-length change
    def for_read_length(self, read_length: int, *, mode: str = "extend") -> ErrorModel:
        """The model adapted to ``read_length`` cycles (cached; returns self when equal).

        Parameters
        ----------
        read_length
            Target number of cycles, >= 1.
        mode
            ``"extend"`` (default): keep cycle c as cycle c; shorter reads drop the last cycles,
            longer reads repeat the last transition matrix (sequencing chemistry degrades with
            cycle number, not with the fraction of the read). ``"stretch"``: map cycle j of the
            new length to cycle ``round(j * (L-1) / (read_length-1))`` of the model.
        """
        if not isinstance(read_length, int | np.integer) or read_length < 1:
            raise ValueError(f"read_length must be a positive integer, got {read_length!r}")
        if mode not in ("extend", "stretch"):
            raise ValueError(f"mode must be 'extend' or 'stretch', got {mode!r}")
        read_length = int(read_length)
        if read_length == self.read_length:
            return self
        key = (read_length, mode)
        if key not in self._lengths:
            self._lengths[key] = self._resized(read_length, mode)
        return self._lengths[key]

    def _resized(self, new_len: int, mode: str) -> ErrorModel:
        old_len = self.read_length
        if mode == "extend":
            src = np.minimum(np.arange(new_len - 1), old_len - 2)
        else:
            scale = (old_len - 1) / max(new_len - 1, 1)
            src = np.minimum(np.round(np.arange(new_len - 1) * scale).astype(int), old_len - 2)
        reads = {}
        for r, p in self.reads.items():
            trans = p.transitions[src] if old_len > 1 else np.broadcast_to(
                np.eye(self.n_bins), (new_len - 1, self.n_bins, self.n_bins))
            reads[r] = ReadProfile(
                initial=p.initial, transitions=trans, substitution=p.substitution,
                insertion_rate=p.insertion_rate, deletion_rate=p.deletion_rate,
                insertion_lengths=p.insertion_lengths, deletion_lengths=p.deletion_lengths,
                no_call=p.no_call,
            )
        source = dict(self.source)
        source["resized"] = {"from_read_length": old_len, "to_read_length": new_len, "mode": mode}
        return ErrorModel(name=self.name, quality_values=self.quality_values, reads=reads,
                          description=self.description, source=source)

    # ---------------------------------------------------------------------------- apply
    def apply(
        self, *, rng: np.random.Generator, bases: np.ndarray, read_number: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw qualities and substitution errors for a batch of reads.

        Parameters
        ----------
        rng
            The only source of randomness (the caller owns seeding).
        bases
            uint8 (n, L) ASCII ``ACGT`` (``N`` allowed), in sequencing order (column 0 is cycle
            0). Not modified. L must equal ``read_length`` (see ``for_read_length``).
        read_number
            1 or 2.

        Returns
        -------
        bases_out
            uint8 (n, L) ASCII: ``bases`` with substitution errors and no-calls (``N``) applied;
            input ``N`` stays ``N``.
        quals
            uint8 (n, L) Phred values (not +33); input ``N`` bases get ``no_call_quality``.
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy.random.Generator")
        bases = np.asarray(bases)
        if bases.dtype != np.uint8 or bases.ndim != 2:
            raise ValueError(f"bases must be a uint8 (n, L) array, got {bases.dtype} {bases.shape}")
        n, length = bases.shape
        if length != self.read_length:
            raise ValueError(
                f"bases have {length} cycles but the model has {self.read_length}: "
                "use model.for_read_length(L) first"
            )
        bank = self._bank(read_number)
        # A bytearray copy: writable, and ``find`` tells in one fast scan whether any N is in.
        buf = bytearray(np.ascontiguousarray(bases))
        out = np.frombuffer(buf, dtype=np.uint8).reshape(n, length)
        input_n = buf.find(b"N") >= 0
        if n == 0:
            return out, np.empty((0, length), dtype=np.uint8)
        rows = rng.integers(0, bank.quals.shape[0], size=n)
        quals = bank.quals[rows]

        counts = rng.poisson(bank.row_total[rows])
        total = int(counts.sum())
        if total:
            read_idx = np.repeat(np.arange(n), counts)
            row_of_hit = rows[read_idx]
            cycle = _hit_cycles(bank, row_of_hit, rng.random(total), length)
            # Two arrivals in one cycle's interval are one error (that is what makes it exact).
            # Hits are in read order already, so the stable sort (a merge sort that takes
            # sorted runs as they are) only reorders within reads: 4x faster than quicksort.
            flat = read_idx * length + cycle
            flat = np.sort(flat.astype(np.int32) if n * length < 2**31 else flat,
                           kind="stable").astype(np.int64)
            flat = flat[np.concatenate(([True], flat[1:] != flat[:-1]))]
            read_idx, cycle = np.divmod(flat, length)
            bins = bank.bins[rows[read_idx], cycle]
            true = _CODE[out.ravel()[flat]]
            keep = rng.random(flat.size) < bank.accept[bins, true]
            flat, bins, true = flat[keep], bins[keep], true[keep]
            if flat.size:
                # The called base: how many of its row of wrong_cum the uniform passes, one
                # flat gather per column (an (m, 3) compare summed by row is 2x slower).
                u = rng.random(flat.size)
                at = (bins.astype(np.intp) * 5 + true) * 4
                wrong_cum = bank.wrong_cum.ravel()
                called = (u > wrong_cum[at]).astype(np.uint8)
                called += u > wrong_cum[at + 1]
                called += u > wrong_cum[at + 2]
                out.ravel()[flat] = _ASCII[called]
        if bank.n_cycles.size:
            per_read = bank.n_ptr[rows + 1] - bank.n_ptr[rows]
            total_n = int(per_read.sum())
            if total_n:
                ends = np.cumsum(per_read)
                within = np.arange(total_n) - np.repeat(ends - per_read, per_read)
                src = np.repeat(bank.n_ptr[rows], per_read) + within
                read_n = np.repeat(np.arange(n), per_read)
                out.ravel()[read_n * length + bank.n_cycles[src]] = ord("N")
        if input_n:
            quals[bases == ord("N")] = self.no_call_quality
        return out, quals

    def _bank(self, read_number: int) -> _Bank:
        prof = self._profile(read_number)
        bank = self._banks.get(read_number)
        if bank is None:
            bank = self._make_bank(prof, read_number)
            self._banks[read_number] = bank
        return bank

    def _content_seed(self, read_number: int) -> int:
        h = hashlib.sha256(FORMAT.encode())
        h.update(self.quality_values.tobytes())
        prof = self.reads[read_number]
        # Hash what the file holds (rounded), so a saved and reloaded model draws the same bank.
        for arr in (prof.initial, prof.transitions, prof.substitution, prof.no_call):
            h.update(np.ascontiguousarray(np.round(arr, _ROUND)).tobytes())
        h.update(str(read_number).encode())
        return int.from_bytes(h.digest()[:8], "little")

    def _make_bank(self, prof: ReadProfile, read_number: int) -> _Bank:
        gen = np.random.default_rng(self._content_seed(read_number))
        n_rows, length, k = BANK_SIZE, prof.n_cycles, self.n_bins
        bins = _markov_bins(gen, prof.initial, prof.transitions, n_rows)
        quals = self.quality_values.astype(np.uint8)[bins]
        # No-calls are fixed per bank cell; substitutions only hit the other cells, with the
        # probability conditional on "not N", so P(wrong base) = (1 - no_call) * err as modelled.
        is_n = gen.random((n_rows, length)) < prof.no_call[bins]
        n_rows_idx, n_cycles = np.nonzero(is_n)
        n_ptr = np.concatenate([[0], np.cumsum(np.bincount(n_rows_idx, minlength=n_rows))])

        err = prof.error_by_bin(given_called=True)  # (K, 4)
        p_max = np.minimum(err.max(axis=1), _P_CAP)  # (K,)
        hazard = -np.log1p(-p_max)[bins]  # (B, L)
        hazard[is_n] = 0.0
        cum_hazard = np.cumsum(hazard, axis=1)
        row_total = cum_hazard[:, -1].copy()
        guide = _guide_table(cum_hazard, row_total)
        cum_hazard = cum_hazard.ravel()
        accept = np.zeros((k, 5))
        with np.errstate(divide="ignore", invalid="ignore"):
            accept[:, :4] = np.where(p_max[:, None] > 0, np.minimum(err / p_max[:, None], 1.0), 0)
        wrong = prof.substitution.copy()
        idx = np.arange(4)
        wrong[:, idx, idx] = 0.0
        sums = wrong.sum(axis=2, keepdims=True)
        wrong = np.divide(wrong, sums, out=np.full_like(wrong, 1 / 3), where=sums > 0)
        wrong[:, idx, idx] = 0.0  # (rows with no error mass: uniform over the wrong bases)
        wrong_cum = np.zeros((k, 5, 4))
        wrong_cum[:, :4, :] = np.cumsum(wrong, axis=2)
        wrong_cum[:, :, 3] = 1.0  # guard against rounding: the last base catches all
        n_cycles = n_cycles.astype(np.int64)
        for arr in (quals, bins, cum_hazard, row_total, guide, accept, wrong_cum, n_ptr,
                    n_cycles):
            arr.setflags(write=False)
        return _Bank(quals=quals, n_ptr=n_ptr, n_cycles=n_cycles, bins=bins,
                     cum_hazard=cum_hazard, row_total=row_total, guide=guide,
                     accept=accept, wrong_cum=wrong_cum)

    # --------------------------------------------------------------------------- files
    def to_dict(self) -> dict[str, Any]:
        """The JSON document of this model (format ``synthlib.errormodel/1``)."""

        def arr(a: np.ndarray) -> Any:
            return np.round(np.asarray(a, dtype=np.float64), _ROUND).tolist()

        return {
            "format": FORMAT,
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "read_length": self.read_length,
            "bases": BASES,
            "quality_values": self.quality_values.tolist(),
            "reads": {
                str(r): {
                    "initial": arr(p.initial),
                    "transitions": arr(p.transitions),
                    "substitution": arr(p.substitution),
                    "insertion_rate": float(p.insertion_rate),
                    "deletion_rate": float(p.deletion_rate),
                    "insertion_lengths": arr(p.insertion_lengths),
                    "deletion_lengths": arr(p.deletion_lengths),
                    "no_call": arr(p.no_call),
                }
                for r, p in sorted(self.reads.items())
            },
        }

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON (gzip-compressed when ``path`` ends with ``.gz``)."""
        path = Path(path)
        text = json.dumps(self.to_dict(), separators=(",", ":")) + "\n"
        try:
            if path.suffix == ".gz":
                with gzip.open(path, "wt", encoding="utf-8") as fh:
                    fh.write(text)
            else:
                path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ModelError(f"cannot write model: {exc.strerror}", where=str(path)) from None
        return path

    @classmethod
    def load(cls, name_or_path: str | Path) -> ErrorModel:
        """Load a shipped preset by name (e.g. ``illumina-2x150``) or a model file by path.

        Raises
        ------
        ModelError
            The file is missing, not JSON, of another format version, or a field is missing or
            malformed (the message names the file and the field).
        """
        if not isinstance(name_or_path, str | Path):
            raise TypeError("name_or_path must be a str or Path")
        path = Path(name_or_path)
        if not path.is_file():
            preset = MODELS_DIR / f"{name_or_path}.json"
            if isinstance(name_or_path, str) and "/" not in name_or_path and preset.is_file():
                path = preset
            else:
                raise ModelError(
                    "no such model file or preset (presets: " + ", ".join(preset_names()) + ")",
                    where=str(name_or_path),
                )
        try:
            if path.suffix == ".gz":
                with gzip.open(path, "rt", encoding="utf-8") as fh:
                    data = json.load(fh)
            else:
                data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ModelError(f"cannot read model: {exc}", where=str(path)) from None
        except (ValueError, EOFError) as exc:
            raise ModelError(f"not a JSON model file: {exc}", where=str(path)) from None
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "<model>") -> ErrorModel:
        """Build and validate a model from its JSON document (errors name ``where`` + field)."""
        return _parse(data, where)


def _guide_table(cum: np.ndarray, total: np.ndarray) -> np.ndarray:
    """For each row of ``cum`` (B, L) (cumulative hazard through each cycle, ``total`` (B,)
    its last column) and each g < G = L, the first cycle whose cumulative hazard exceeds
    ``g / G * total``; (B*G,), uint8 (uint16 for reads over 256 cycles).

    Never past the true cycle of any point of bucket g, so a lookup only walks forward (half
    a step on average: a hit lands in each bucket with probability 1/G, and a bucket holds
    L/G cycle ends on average)."""
    n_rows, length = cum.shape
    grid = length
    scale = grid / np.where(total > 0, total, 1.0) * (1 + 1e-12)
    # k[c] = buckets g whose left edge lies below cum[c], rounded up (never fewer, so the
    # table never points past a cycle); an all-zero row gets k = 0 (it never has a hit).
    k = cum * scale[:, None]
    np.ceil(k, out=k)
    np.minimum(k, grid, out=k)
    k = k.astype(np.int32)
    # guide[g] = #{c : k[c] <= g}: buckets k[c-1] .. k[c]-1 hold c, in one repeat.
    counts = np.empty((n_rows, length + 1), dtype=np.int32)
    counts[:, 0] = k[:, 0]
    np.subtract(k[:, 1:], k[:, :-1], out=counts[:, 1:length])
    counts[:, length] = grid - k[:, -1]
    dtype = np.uint8 if length <= 256 else np.uint16
    values = np.minimum(np.arange(length + 1), length - 1).astype(dtype)
    return np.repeat(np.tile(values, n_rows), counts.ravel())


def _hit_cycles(bank: _Bank, rows: np.ndarray, u: np.ndarray, length: int) -> np.ndarray:
    """The cycle of each hit: the first cycle of bank row ``rows`` (h,) whose cumulative
    hazard exceeds ``u * row_total`` (``u`` (h,) uniform in [0, 1)); int64 (h,).

    The guide table gives a cycle at or before it, and the rest is a short forward walk (the
    same answer as a binary search over the row, at a few vector passes instead of ~8
    scattered probes per hit)."""
    target = u * bank.row_total[rows]
    # The bucket is rounded down (never past the one holding the target).
    g = (u * (length * (1 - 1e-12))).astype(np.int64)
    base = rows * length
    cycle = bank.guide[base + g].astype(np.int64)
    todo = np.flatnonzero((cycle < length - 1) & (bank.cum_hazard[base + cycle] <= target))
    while todo.size:
        cycle[todo] += 1
        c = cycle[todo]
        todo = todo[(c < length - 1) & (bank.cum_hazard[base[todo] + c] <= target[todo])]
    return cycle


def _markov_bins(gen: np.random.Generator, initial: np.ndarray, transitions: np.ndarray,
                 n_rows: int) -> np.ndarray:
    """``n_rows`` quality-bin chains: cycle 0 from ``initial`` (K,), then ``transitions``
    (L-1, K, K). Returns uint8 (n_rows, L).

    One uniform per row and cycle, drawn cycle by cycle (so the stream is that of a draw per
    cycle); a draw is the number of the row's cumulative probabilities at or below it, added
    up bin by bin (K compares of a vector, no (n, K) temporaries).
    """
    k = len(initial)
    length = transitions.shape[0] + 1
    u = gen.random((length, n_rows))
    # cum[c, j, s]: P(next bin <= j | bin s) at cycle c; the last bin takes the rest.
    cum = np.ascontiguousarray(np.cumsum(transitions, axis=2).transpose(0, 2, 1))
    first = np.cumsum(initial)
    bins = np.empty((length, n_rows), dtype=np.uint8)
    cur = np.zeros(n_rows, dtype=np.uint8)
    for j in range(k - 1):
        cur += u[0] >= first[j]
    bins[0] = cur
    for c in range(length - 1):
        nxt = np.zeros(n_rows, dtype=np.uint8)
        for j in range(k - 1):
            nxt += u[c + 1] >= cum[c, j][cur]
        bins[c + 1] = cur = nxt
    return np.ascontiguousarray(bins.T)


def preset_names() -> list[str]:
    """Names of the models shipped in ``synthlib/data/models``."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.json"))


# ------------------------------------------------------------------------------ parsing
def _fail(where: str, fld: str, message: str) -> ModelError:
    return ModelError(message, where=f"{where}:{fld}")


def _get(obj: dict, key: str, where: str, prefix: str) -> Any:
    fld = f"{prefix}{key}"
    if key not in obj:
        raise _fail(where, fld, "missing field")
    return obj[key]


def _prob_array(value: Any, shape: tuple[int, ...], where: str, fld: str) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(where, fld, "must be a (nested) list of numbers") from None
    if arr.shape != shape:
        raise _fail(where, fld, f"has shape {arr.shape}, expected {shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise _fail(where, fld, "probabilities must be finite and >= 0")
    sums = arr.sum(axis=-1, keepdims=True)
    if np.any(np.abs(sums - 1.0) > _SUM_TOL):
        raise _fail(where, fld, "probabilities along the last axis must sum to 1")
    return arr / sums


def _unit_array(value: Any, k: int, where: str, fld: str) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(where, fld, "must be a list of numbers") from None
    if arr.shape != (k,):
        raise _fail(where, fld, f"has shape {arr.shape}, expected {(k,)}")
    if not np.all((arr >= 0) & (arr <= 1)):
        raise _fail(where, fld, "probabilities must be in [0, 1]")
    return arr


def _rate(value: Any, where: str, fld: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        0.0 <= float(value) < 1.0
    ):
        raise _fail(where, fld, "must be a number in [0, 1)")
    return float(value)


def _parse(data: Any, where: str) -> ErrorModel:
    if not isinstance(data, dict):
        raise _fail(where, "format", "a model file must be a JSON object")
    fmt = _get(data, "format", where, "")
    if fmt != FORMAT:
        raise _fail(where, "format", f"unknown model format {fmt!r} (this version reads {FORMAT})")
    name = _get(data, "name", where, "")
    if not isinstance(name, str) or not name:
        raise _fail(where, "name", "must be a non-empty string")
    length = _get(data, "read_length", where, "")
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise _fail(where, "read_length", "must be a positive integer")
    if _get(data, "bases", where, "") != BASES:
        raise _fail(where, "bases", f"must be {BASES!r}")
    qv = _get(data, "quality_values", where, "")
    if (
        not isinstance(qv, list) or not qv
        or not all(isinstance(q, int) and not isinstance(q, bool) and 0 <= q <= 93 for q in qv)
        or any(b <= a for a, b in zip(qv, qv[1:], strict=False))
    ):
        raise _fail(where, "quality_values", "must be strictly increasing integers in 0..93")
    k = len(qv)
    reads_obj = _get(data, "reads", where, "")
    if not isinstance(reads_obj, dict):
        raise _fail(where, "reads", "must be an object with keys '1' and '2'")
    reads = {}
    for r in (1, 2):
        prof = _get(reads_obj, str(r), where, "reads.")
        pre = f"reads.{r}."
        if not isinstance(prof, dict):
            raise _fail(where, f"reads.{r}", "must be an object")
        lens = {}
        for key in ("insertion_lengths", "deletion_lengths"):
            val = _get(prof, key, where, pre)
            n_len = len(val) if isinstance(val, list) and val else 1
            if not isinstance(val, list) or not val:
                raise _fail(where, pre + key, "must be a non-empty list of probabilities")
            lens[key] = _prob_array(val, (n_len,), where, pre + key)
        reads[r] = ReadProfile(
            initial=_prob_array(_get(prof, "initial", where, pre), (k,), where, pre + "initial"),
            transitions=_prob_array(
                _get(prof, "transitions", where, pre), (length - 1, k, k), where,
                pre + "transitions"),
            substitution=_prob_array(
                _get(prof, "substitution", where, pre), (k, 4, 4), where, pre + "substitution"),
            insertion_rate=_rate(_get(prof, "insertion_rate", where, pre), where,
                                 pre + "insertion_rate"),
            deletion_rate=_rate(_get(prof, "deletion_rate", where, pre), where,
                                pre + "deletion_rate"),
            insertion_lengths=lens["insertion_lengths"],
            deletion_lengths=lens["deletion_lengths"],
            no_call=_unit_array(_get(prof, "no_call", where, pre), k, where, pre + "no_call"),
        )
    description = data.get("description", "")
    source = data.get("source", {})
    if not isinstance(description, str):
        raise _fail(where, "description", "must be a string")
    if not isinstance(source, dict):
        raise _fail(where, "source", "must be an object")
    return ErrorModel(name=name, quality_values=np.array(qv), reads=reads,
                      description=description, source=source)


# ---------------------------------------------------------------------------- benchmark
def benchmark_apply(
    *, model: str | ErrorModel = "illumina-2x150", n_reads: int = 200_000, read_length: int = 150,
    repeats: int = 3, seed: int = 1,
) -> dict[str, float]:
    """Measure ``apply`` throughput (reads per CPU-second, best of ``repeats``, both reads).

    Returns
    -------
    dict
        ``reads_per_cpu_second``, ``bases_per_cpu_second``, ``seconds_per_batch`` (best),
        ``bank_build_seconds`` (one-off per model and read number).
    """
    if n_reads < 1 or repeats < 1:
        raise ValueError("n_reads and repeats must be >= 1")
    m = model if isinstance(model, ErrorModel) else ErrorModel.load(model)
    m = m.for_read_length(read_length)
    rng = np.random.default_rng(seed)
    bases = _ASCII[rng.integers(0, 4, size=(n_reads, read_length))]
    t0 = time.process_time()
    m._bank(1)
    m._bank(2)
    bank_seconds = time.process_time() - t0
    best = math.inf
    for _ in range(repeats):
        t0 = time.process_time()
        m.apply(rng=rng, bases=bases, read_number=1)
        m.apply(rng=rng, bases=bases, read_number=2)
        best = min(best, (time.process_time() - t0) / 2)
    best = max(best, 1e-9)
    return {
        "reads_per_cpu_second": n_reads / best,
        "bases_per_cpu_second": n_reads * read_length / best,
        "seconds_per_batch": best,
        "bank_build_seconds": bank_seconds,
    }
