"""Bad input, fuzzed (issue 14, section 6): every file reader, fed damaged or hostile files.

The readers: IDX files, the rows and labels of ``keras-clust cluster``, mixture files (JSON/NPZ), vector-field
files and Lennard-Jones datasets. Hypothesis draws truncated and byte-flipped copies of valid files, headers
with wrong magic numbers, dtype codes or dimension counts, sizes declaring far more data than the file holds,
NaN/inf values, pickled objects, unexpected keys, random bytes and random JSON. Whatever it draws, a reader
either returns or raises a :class:`~keras_clust.errors.KerasClustError` whose message is one line naming the
file: never another exception (a traceback at the command line), never a hang (an alarm stops the call),
never an allocation the file cannot back (tracemalloc's peak stays far below what a trusted header asks for).
Examples are derandomized and no example database is kept, so CI sees the same files on every run.
"""

import gzip
import io
import json
import logging
import math
import pickle
import re
import signal
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.lib import format as npy_format

import keras_clust.models  # noqa: F401  (TensorFlow, which load_fields imports, imported before any measurement)
from helpers import cli
from keras_clust.data.gmm import load_mixture, sample_mixture
from keras_clust.data.idx import IDX_DTYPES, read_idx
from keras_clust.data.rows import load_labels, load_rows
from keras_clust.errors import KerasClustError
from keras_clust.fields.dataset import load_fields, save_fields
from keras_clust.fields.generator import generate_fields
from keras_clust.lj.dataset import load_lj_dataset, save_lj_dataset
from keras_clust.lj.results import GammaDiagnostics, Simulation
from keras_clust.validation import check_rows

#: A reader that drops the imaginary part of complex data, casts 1e300 to int64 or to float32 accepts bad data
#: silently (numpy only warns): that counts as a failure too.
pytestmark = [
    pytest.mark.filterwarnings("error::numpy.exceptions.ComplexWarning"),
    pytest.mark.filterwarnings("error:invalid value encountered in cast:RuntimeWarning"),
    pytest.mark.filterwarnings("error:overflow encountered in cast:RuntimeWarning"),
]

FUZZ = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Most a reader may allocate (tracemalloc's peak) for these files of a few kilobytes; a reader that trusts
#: a declared size allocates gigabytes instead, or fails to allocate terabytes.
PEAK_LIMIT = 32 * 2**20
#: Seconds one read may take before it counts as a hang.
HANG_SECONDS = 20


class Hang(BaseException):
    """Raised by the alarm; not an Exception, so no reader's ``except`` can turn it into a DataError."""


def _hang(signum, frame):
    raise Hang(f"the reader ran for over {HANG_SECONDS} s")


def outcome(read, path: Path) -> str | None:
    """Run ``read(path)`` under an alarm and tracemalloc: None when the file is accepted, the message when it
    is refused with a project error. Any other exception propagates and fails the test."""
    previous = signal.signal(signal.SIGALRM, _hang)
    signal.alarm(HANG_SECONDS)
    tracemalloc.start()
    message = hung = None
    try:
        read(path)
    except KerasClustError as exc:
        message = str(exc)
    except Hang as exc:
        hung = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert hung is None, f"{path.name}: {hung}"
    assert peak < PEAK_LIMIT, f"{path.name}: {peak / 2**20:.0f} MiB allocated for {path.stat().st_size} bytes"
    if message is not None:
        assert message.strip() and "\n" not in message, repr(message)
        assert path.name in message, message
    return message


def refused(read, path: Path) -> str:
    message = outcome(read, path)
    assert message is not None, f"{path.name} was accepted"
    return message


# ------------------------------------------------------------------------------------- the readers, as used


def read_rows(path):
    """What ``keras-clust cluster --data`` does with the file before any model sees it."""
    check_rows(load_rows(path), str(path), min_samples=2)


def read_labels(path):
    load_labels(path, 3)


def read_mixture(path):
    sample_mixture(load_mixture(path), 4)


def read_lj(path):
    sim = load_lj_dataset(path)
    sim.positions_by_gamma()
    for d in sim.diagnostics:
        d.scalars()


READERS = {
    "idx": read_idx,
    "rows": read_rows,
    "labels": read_labels,
    "mixture": read_mixture,
    "fields": load_fields,
    "lj": read_lj,
}
#: The readers of .npy and .npz files, and the key each one reads (every key, for all but rows and labels).
ARRAY_READERS = {"rows": "x", "labels": "y", "mixture": "means", "fields": "fields", "lj": "positions"}
NPY_READERS = ("rows", "labels", "fields")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """One folder for every example (Hypothesis runs many examples in one function-scoped tmp_path)."""
    return tmp_path_factory.mktemp("fuzz")


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------------------------- file builders


def npy_bytes(descr, shape, payload: bytes = b"", fortran: bool = False) -> bytes:
    """An .npy file with any header at all (``np.save`` would refuse most of the ones drawn here)."""
    buf = io.BytesIO()
    npy_format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": fortran, "shape": tuple(shape)})
    return buf.getvalue() + payload


def npz_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as z:
        for name, content in members.items():
            z.writestr(name, content)
    return buf.getvalue()


def saved(arrays: dict[str, np.ndarray], compressed: bool = False) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def npy_of(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def arrays_of(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def lying_sizes(data: bytes, size: int) -> bytes:
    """``data``, a zip of stored members, with every member's uncompressed size said to be ``size``."""
    raw = bytearray(data)
    for signature, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        for m in re.finditer(re.escape(signature), data):
            raw[m.start() + at : m.start() + at + 4] = struct.pack("<I", size)
    return bytes(raw)


def idx_header(dims, code: int = 0x08, zero: int = 0) -> bytes:
    return struct.pack(">HBB", zero, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)


MIXTURE = {
    "means": [[0.0, 0.0], [5.0, 5.0]],
    "covariances": [[[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.5], [0.5, 1.0]]],
    "weights": [0.25, 0.75],
}
ROWS = np.linspace(0.0, 1.0, 20, dtype=np.float32).reshape(5, 4)
LABELS = np.array([0, 1, 1])
IDX_ROWS = idx_header((5, 4)) + bytes(range(20))


def lj_dataset(folder: Path) -> bytes:
    """2 gammas x 2 configurations of 2 particles in a 2-D box of side 4, as ``save_lj_dataset`` writes them."""
    gammas = [0.5, 1.0]
    positions = np.random.default_rng(0).uniform(0.5, 3.5, (4, 2, 2)).astype(np.float32)
    config = {
        "n_particles": 2,
        "box": 4.0,
        "dim": 2,
        "temperature": 1.0,
        "gammas": gammas,
        "samples_per_gamma": 2,
        "replicas": 2,
        "kick": 0.3,
        "seed": 0,
        "threshold": 0.1,
        "preliminary_sweeps": 4,
    }
    diagnostics = [
        GammaDiagnostics(
            gamma=g,
            energy_traces=np.zeros((2, 5)),
            equilibration_sweep=1,
            energy_acf=np.ones(3),
            position_acf=np.ones(3),
            lag=1,
            crossing=1,
            decorrelated=True,
            acceptance=np.full(2, 0.5),
            moves=100,
            seconds=0.1,
            kernel_seconds=0.05,
            energy_drift=0.0,
        )
        for g in gammas
    ]
    sim = Simulation(positions, np.repeat(np.float32(gammas), 2), np.zeros(4), np.arange(4) % 2, config, diagnostics)
    return save_lj_dataset(sim, folder / "lj.npz").read_bytes()


def fields_dataset(folder: Path) -> bytes:
    """Three 16x16 fields of two channels, as ``save_fields`` writes them."""
    fs = generate_fields(1, size=16, channels=("u", "v"), flow_types=("uniform", "source", "vortex_cw"), seed=0)
    return save_fields(fs, folder / "fields.npz").read_bytes()


class Files(dict):
    """Files by reader, printed by name only when Hypothesis reports a failing example."""

    def __repr__(self):
        return f"Files({', '.join(f'{k}: {[name for name, _ in v]}' for k, v in self.items())})"


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> Files:
    """``(name, bytes)`` of valid files of every reader: where truncations and byte flips start from."""
    here = tmp_path_factory.mktemp("valid")
    idx_gz = gzip.compress(IDX_ROWS)
    files = Files(
        {
            "idx": [("x-idx.gz", idx_gz), ("x.idx", idx_header((3, 2), 0x0D) + np.ones((3, 2), ">f4").tobytes())],
            "rows": [
                ("x.npy", npy_of(ROWS)),
                ("x.npz", saved({"x": ROWS, "y": np.arange(5)}, compressed=True)),
                ("x-idx.gz", idx_gz),
            ],
            "labels": [("y.npy", npy_of(LABELS)), ("y.npz", saved({"y": LABELS, "x": ROWS[:3]}))],
            "mixture": [
                ("m.json", json.dumps(MIXTURE).encode()),
                ("m.npz", saved({k: np.array(v) for k, v in MIXTURE.items()}, compressed=True)),
            ],
            "fields": [("f.npz", fields_dataset(here))],
            "lj": [("lj.npz", lj_dataset(here))],
        }
    )
    for reader, named in files.items():
        for name, data in named:
            assert outcome(READERS[reader], write(here, name, data)) is None, (reader, name)
    return files


# ------------------------------------------------------------------------------------------------ strategies

#: Dimensions: small ones, and ones whose product overflows 32 or 64 bits.
DIMS = st.integers(0, 4) | st.sampled_from([2**16, 2**31, 2**32 - 1])
#: dtype descriptions of .npy headers: plain numbers, the kinds no reader takes, and absurd item sizes.
DESCRS = [
    "<f4",
    ">f8",
    "<f2",
    "|u1",
    ">i2",
    "<i8",
    "|b1",
    "<c8",
    "<U3",
    "|S2",
    "<M8[s]",
    "|O",
    "|V2000000000",
    "<U1000000000",
    [("a", "<f4"), ("b", "|O")],
    "not a dtype",
]
#: Keys of the .npz files the readers know, and a few they do not.
KEYS = [
    "x",
    "y",
    "data",
    "labels",
    "fields",
    "channels",
    "class_names",
    "settings",
    "note",
    "means",
    "weights",
    "covariances",
    "positions",
    "gamma",
    "energy",
    "replica",
    "settings_json",
    "diagnostics_json",
    "a b",
]
DTYPES = st.sampled_from(["<f4", ">f8", "|u1", "<i8", "|b1", "<c8", "<U3", "<M8[s]"]).map(np.dtype)
ARRAYS = DTYPES.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)))
#: JSON values: NaN and infinities (which json writes and reads), integers too large for a float, text, nesting.
JSON_SCALARS = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from([10**400, 2**63]) | st.floats()
JSON = st.recursive(
    JSON_SCALARS | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def npy_files(draw) -> tuple[bytes, int, int]:
    """An .npy header of any dtype and shape, with some payload; returns (bytes, declared bytes, payload bytes)."""
    descr = draw(st.sampled_from(DESCRS))
    shape = draw(st.lists(DIMS, max_size=4))
    try:
        declared = math.prod(shape) * np.dtype(descr).itemsize
    except TypeError:
        declared = 0
    exact = 0 <= declared <= 2048 and draw(st.booleans())
    payload = draw(st.binary(min_size=declared, max_size=declared) if exact else st.binary(max_size=64))
    return npy_bytes(descr, shape, payload, draw(st.booleans())), declared, len(payload)


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """``data`` with a few bytes overwritten anywhere (uniformly: the compressed data of a zip member is as
    worth hitting as its header), and sometimes cut short."""
    rnd = draw(st.randoms(use_true_random=False))
    raw = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        raw[rnd.randrange(len(raw))] = rnd.randrange(256)
    return bytes(raw[: rnd.randrange(1, len(raw) + 1)] if draw(st.booleans()) else raw)


# ---------------------------------------------------------------------------------- damaged copies of files


@pytest.mark.parametrize("reader", READERS)
@FUZZ
@given(data=st.data())
def test_truncated_files_are_refused(reader, folder, valid, data):
    name, whole = valid[reader][data.draw(st.integers(0, len(valid[reader]) - 1))]
    cut = data.draw(st.integers(0, len(whole) - 1))
    refused(READERS[reader], write(folder, name, whole[:cut]))


@pytest.mark.parametrize("reader", READERS)
@FUZZ
@given(data=st.data())
def test_byte_flips_give_only_one_line_project_errors(reader, folder, valid, data):
    name, whole = valid[reader][data.draw(st.integers(0, len(valid[reader]) - 1))]
    outcome(READERS[reader], write(folder, name, data.draw(damaged(whole))))


@pytest.mark.parametrize("reader", READERS)
@FUZZ
@given(data=st.data())
def test_random_bytes_are_refused(reader, folder, valid, data):
    name = data.draw(st.sampled_from([name for name, _ in valid[reader]]))
    refused(READERS[reader], write(folder, name, data.draw(st.binary(max_size=300))))


# ---------------------------------------------------------------------------------------------------- IDX


@FUZZ
@given(
    zero=st.just(0) | st.integers(1, 0xFFFF),
    code=st.sampled_from(sorted(IDX_DTYPES)) | st.integers(0, 255),
    dims=st.lists(DIMS, max_size=4) | st.lists(st.just(1), min_size=5, max_size=255),
    data=st.data(),
    gz=st.booleans(),
)
@example(zero=0, code=0x08, dims=[2**16] * 4, data=None, gz=False)  # 2**64 bytes: an int64 product wraps to 0
@example(zero=0, code=0x08, dims=[0] + [2**32 - 1] * 3, data=None, gz=False)  # no bytes, yet no array has this shape
def test_idx_headers(folder, zero, code, dims, data, gz):
    """An IDX file is accepted exactly when its magic, dtype code, dimension count and length all agree and
    an array can have its shape."""
    itemsize = IDX_DTYPES[code].itemsize if code in IDX_DTYPES else 1
    declared = math.prod(dims) * itemsize
    shape_fits = math.prod(d for d in dims if d) * itemsize <= np.iinfo(np.intp).max
    if data is None:
        payload = b""
    elif declared <= 512 and data.draw(st.booleans()):
        payload = data.draw(st.binary(min_size=declared, max_size=declared))
    else:
        payload = data.draw(st.binary(max_size=64))
    raw = idx_header(dims, code, zero) + payload
    path = write(folder, "x-idx.gz" if gz else "x.idx", gzip.compress(raw) if gz else raw)
    message = outcome(read_idx, path)
    ok = zero == 0 and code in IDX_DTYPES and len(dims) > 0 and len(payload) == declared and shape_fits
    assert (message is None) == ok, message
    if ok:
        assert read_idx(path).shape == tuple(dims)


def test_idx_declaring_two_billion_rows_in_100_bytes(folder):
    for name, data in (
        ("big.idx", idx_header((2**31, 784)) + bytes(100)),
        ("big-idx.gz", gzip.compress(idx_header((2**32 - 1,) * 3, 0x0E) + bytes(100))),
    ):
        for read in (read_idx, read_rows, read_labels):
            assert "truncated" in refused(read, write(folder, name, data))


# -------------------------------------------------------------------------------------------- .npy and .npz


@pytest.mark.parametrize("reader", NPY_READERS)
@FUZZ
@given(npy=npy_files())
@example(npy=(npy_bytes("<f4", (2, 2**29, 2**29, 0)), 0, 0))  # no bytes of data, a side of 2**29 cells
def test_npy_headers(folder, reader, npy):
    data, declared, payload = npy
    message = outcome(READERS[reader], write(folder, "a.npy", data))
    if declared > payload:
        assert message is not None


@pytest.mark.parametrize("reader", ARRAY_READERS)
@FUZZ
@given(
    members=st.dictionaries(
        st.tuples(st.sampled_from(KEYS), st.sampled_from([".npy", ""])).map("".join),
        npy_files().map(lambda f: f[0]) | st.binary(max_size=64),
        max_size=3,
    ),
    compression=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]),
)
def test_npz_members(folder, reader, members, compression):
    outcome(READERS[reader], write(folder, "a.npz", npz_bytes(members, compression)))


@pytest.mark.parametrize("reader", ["rows", "labels", "mixture", "fields", "lj"])
@settings(FUZZ, max_examples=100)  # each example spoils one to three of some 15 arrays
@given(data=st.data())
def test_spoiled_arrays(folder, valid, reader, data):
    """Valid .npz files with arrays dropped, replaced by arrays of any dtype and shape (NaN/inf included)
    or joined by unknown ones."""
    name, whole = next((n, d) for n, d in valid[reader] if n.endswith(".npz"))
    arrays = arrays_of(whole)
    keys = st.sampled_from(sorted(arrays)) | st.sampled_from(KEYS)
    for key in data.draw(st.lists(keys, min_size=1, max_size=3, unique=True)):
        change = data.draw(st.sampled_from(["drop", "dtype", "any"]) if key in arrays else st.just("any"))
        if change == "drop":
            del arrays[key]
        elif change == "dtype":  # the same shape, so that only the values or their type are wrong
            arrays[key] = data.draw(DTYPES.flatmap(lambda dt, shape=arrays[key].shape: hnp.arrays(dt, shape)))
        else:
            arrays[key] = data.draw(ARRAYS)
    outcome(READERS[reader], write(folder, name, saved(arrays)))


#: Values an array may wrongly hold, with their dtypes: NaN, infinity, a float beyond int64, bytes, negatives,
#: an unsigned integer beyond int64, booleans, complex numbers, text, dates.
WRONG = [
    ("<f4", np.nan),
    (">f8", np.inf),
    ("<f8", 1e300),
    ("|u1", 255),
    ("<i8", -1),
    ("<u8", 2**64 - 1),
    ("|b1", True),
    ("<c8", 1j),
    ("<U3", "a b"),
    ("<M8[s]", 0),
]


@pytest.mark.parametrize("reader", ["rows", "labels", "mixture", "fields", "lj"])
def test_every_array_in_every_wrong_dtype(folder, valid, reader):
    """Each array of a valid .npz in turn, its shape kept, filled with each value of :data:`WRONG`."""
    name, whole = next((n, d) for n, d in valid[reader] if n.endswith(".npz"))
    arrays = arrays_of(whole)
    for key, value in arrays.items():
        for dtype, fill in WRONG:
            outcome(READERS[reader], write(folder, name, saved({**arrays, key: np.full(value.shape, fill, dtype)})))


def _huge(descr: str, count: int) -> bytes:
    return npy_bytes(descr, (count,), bytes(64))


#: Headers declaring 2 GiB (which can be allocated without being touched) and 8 TiB (which cannot).
HUGE = {"2GiB": ("|u1", 2**31), "8TiB": ("<f8", 2**40)}


def _containers(*kinds: str) -> list[tuple[str, str]]:
    """(reader, container) pairs: every array reader with every kind, .npy kinds only for readers of .npy."""
    return [(r, k) for r in ARRAY_READERS for k in kinds if not k.endswith("npy") or r in NPY_READERS]


@pytest.mark.parametrize("size", HUGE)
@pytest.mark.parametrize("reader, container", _containers("npy", "stored", "deflated", "lying-zip"))
def test_declared_sizes_beyond_the_file_are_refused_before_allocating(folder, reader, container, size):
    member = _huge(*HUGE[size])
    key = ARRAY_READERS[reader]
    if container == "npy":
        path = write(folder, "huge.npy", member)
    elif container == "lying-zip":  # the zip's own sizes claim 4 GB as well
        path = write(folder, "huge.npz", lying_sizes(npz_bytes({f"{key}.npy": member}), 2**32 - 1))
    else:
        compression = zipfile.ZIP_DEFLATED if container == "deflated" else zipfile.ZIP_STORED
        path = write(folder, "huge.npz", npz_bytes({f"{key}.npy": member}, compression))
    assert "declares" in refused(READERS[reader], path)  # refused by the size check, before numpy allocates


# ------------------------------------------------------------------------------------------------- pickles

UNPICKLED = []


def _tripwire():
    UNPICKLED.append(True)
    return 0


class Tripwire:
    """An object whose unpickling calls :func:`_tripwire`."""

    def __reduce__(self):
        return _tripwire, ()


@pytest.mark.parametrize("reader, container", _containers("objects.npy", "objects.npz", "pickle.npy", "pickle.npz"))
def test_pickled_objects_are_never_loaded(folder, reader, container):
    suffix = Path(container).suffix
    objects = np.array([Tripwire(), Tripwire()], dtype=object)
    pickle.loads(pickle.dumps(objects))
    assert UNPICKLED, "the tripwire did not fire"
    UNPICKLED.clear()
    buf = io.BytesIO()
    if container == "objects.npz":
        np.savez(buf, **{ARRAY_READERS[reader]: objects})
    elif container == "objects.npy":
        np.save(buf, objects, allow_pickle=True)
    else:
        pickle.dump(objects, buf)
    message = refused(READERS[reader], write(folder, f"p{suffix}", buf.getvalue()))
    assert not UNPICKLED
    if container.startswith("objects"):
        assert "pickle" in message.lower()


# ---------------------------------------------------------------------------------------------------- JSON


@FUZZ
@given(data=st.data())
def test_mixture_documents(folder, data):
    """Mixture files whose means, covariances or weights are missing or any JSON value (NaN, 10**400...)."""
    doc = dict(MIXTURE)
    numbers = hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=3)).map(np.ndarray.tolist)
    for key in data.draw(st.lists(st.sampled_from([*MIXTURE, "other"]), min_size=1, max_size=3, unique=True)):
        choice = data.draw(st.sampled_from(["drop", "json", "numbers"]))
        if choice == "drop":
            doc.pop(key, None)
        else:
            doc[key] = data.draw(JSON if choice == "json" else numbers)
    top = data.draw(st.just(doc) | JSON)
    outcome(read_mixture, write(folder, "m.json", json.dumps(top).encode()))


@FUZZ
@given(data=st.data())
def test_lj_settings_and_diagnostics(folder, valid, data):
    """LJ datasets whose settings or diagnostics lack a value, hold any JSON value there, or are not JSON."""
    arrays = arrays_of(valid["lj"][0][1])
    config = json.loads(str(arrays["settings_json"]))
    diagnostics = json.loads(str(arrays["diagnostics_json"]))
    for _ in range(data.draw(st.integers(1, 3))):
        target = data.draw(st.sampled_from([config, *diagnostics]))
        key = data.draw(st.sampled_from(sorted(target)))
        if data.draw(st.booleans()):
            del target[key]
        else:
            target[key] = data.draw(JSON)
    arrays["settings_json"] = np.array(json.dumps(config))
    arrays["diagnostics_json"] = np.array(json.dumps(diagnostics))
    if data.draw(st.booleans()):
        arrays[data.draw(st.sampled_from(["settings_json", "diagnostics_json"]))] = np.array(
            data.draw(st.text(max_size=20) | JSON.map(json.dumps))
        )
    outcome(read_lj, write(folder, "lj.npz", saved(arrays)))


def test_deeply_nested_json_is_refused(folder, valid):
    deep = "[" * 100_000 + "]" * 100_000
    refused(read_mixture, write(folder, "deep.json", deep.encode()))
    arrays = arrays_of(valid["lj"][0][1])
    for key in ("settings_json", "diagnostics_json"):
        refused(read_lj, write(folder, "deep.npz", saved({**arrays, key: np.array(deep)})))


def test_identity_covariances_of_a_small_file_are_not_gigabytes(folder):
    """Covariances left out are identities, K x d x d: a 40 kB file of means must not ask for 3 GB."""
    doc = {"means": [[0] * 20_000], "weights": [1]}
    refused(read_mixture, write(folder, "wide.json", json.dumps(doc).encode()))


# -------------------------------------------------------------------------------------- the command line

#: The lines TensorFlow's C++ runtime writes to stderr as it starts, whatever TF_CPP_MIN_LOG_LEVEL says.
TF_START_UP = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\)|[IWE]\d{4} \d\d:\d\d:[\d.]+ +\d+ ")


def assert_one_error_line(code: int, stderr: str) -> None:
    """Exit code 1 and, TensorFlow's start-up lines aside, one line on stderr: ``keras-clust: error: ...``."""
    assert code == 1, (code, stderr[-3000:])
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.strip() and not TF_START_UP.match(line)]
    assert len(lines) == 1 and lines[0].startswith("keras-clust: error: "), stderr[-3000:]


def test_cluster_command_on_an_idx_header_declaring_two_billion_rows(tmp_path):
    """As a user runs it, in a subprocess: ``keras-clust cluster --data`` on 100 bytes whose IDX header
    declares 2**31 rows of 784 bytes."""
    write(tmp_path, "big-idx.gz", gzip.compress(idx_header((2**31, 784)) + bytes(100)))
    res = cli("cluster", "--data", "big-idx.gz", cwd=tmp_path, timeout=300)
    assert_one_error_line(res.returncode, res.stderr)
    assert "big-idx.gz is truncated" in res.stderr


@pytest.fixture
def command(capsys):
    """``keras-clust ARGS`` run in this process, where TensorFlow is already imported (a subprocess spends
    seconds importing it): returns the exit code and stderr. The console script is ``sys.exit(main())``, so
    an exception ``main`` lets through would be a user's traceback; here it fails the test. The loggers
    ``main`` configures are restored afterwards."""
    from keras_clust.cli import main

    loggers = [logging.getLogger(name) for name in ("keras_clust", "tensorflow")]
    saved = [(logger.handlers[:], logger.level, logger.propagate) for logger in loggers]

    def run(*args) -> tuple[int, str]:
        code = main([str(a) for a in args])
        return code, capsys.readouterr().err

    yield run
    for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def _bad_file(family: str, folder: Path, valid) -> Path:
    if family == "mixture":  # JSON nested 100,000 deep
        return write(folder, "deep.json", ("[" * 100_000).encode())
    if family == "fields":  # a member declaring 8 TiB
        return write(folder, "fields.npz", npz_bytes({"fields.npy": _huge("<f8", 2**40)}))
    lj = arrays_of(valid["lj"][0][1])  # infinitely many particles
    config = {**json.loads(str(lj["settings_json"])), "n_particles": math.inf}
    return write(folder, "lj.npz", saved({**lj, "settings_json": np.array(json.dumps(config))}))


#: The command reading each family's files, but for the file.
COMMANDS = {
    "mixture": ("gmm-vae", "run", "--quick", "--mixture"),
    "fields": ("vector-fields", "run", "--quick", "--dataset"),
    "lj": ("lj-fluid", "run", "--quick", "--dataset"),
}


@pytest.mark.parametrize("family", COMMANDS)
def test_commands_say_one_line(command, tmp_path, valid, family):
    path = _bad_file(family, tmp_path, valid)
    code, stderr = command(*COMMANDS[family], path, "--out", tmp_path / "runs")
    assert_one_error_line(code, stderr)
    assert path.name in stderr
