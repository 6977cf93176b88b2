"""A tiny H.264-in-MP4 writer for the stand-in's videos.

The stand-in must hand out real, playable MP4s without ffmpeg or a codec package. Every frame
is an IDR picture made of I_PCM macroblocks, which carry raw samples: no transform and no
entropy coder are needed, at the price of ~1.5 bytes a pixel a frame, which is fine for the
small, slow clips a test double serves.
"""

import re
import struct
from collections.abc import Sequence

from PIL import Image

_MB = 16
_PROFILE_BASELINE = 66
_CONSTRAINED_BASELINE_FLAGS = 0xC0
_LEVEL_3_0 = 30
_MB_TYPE_I_PCM = 25
_NAL_SPS, _NAL_PPS, _NAL_IDR = 0x67, 0x68, 0x65
_TIMESCALE = 1000
_UNITY_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
# Studio-range levels: no sample is ever 0, so slice data cannot form a start code.
_LUMA_LEVELS = [16 + round(v * 219 / 255) for v in range(256)]
_CHROMA_LEVELS = [16 + round(v * 224 / 255) for v in range(256)]
_START_CODE_PREFIX = re.compile(rb"\x00\x00(?=[\x00-\x03])")


class _BitWriter:
    """Exp-Golomb and fixed-width fields, MSB first, as H.264 headers need."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._acc = 0
        self._used = 0

    def u(self, value: int, bits: int) -> None:
        for shift in range(bits - 1, -1, -1):
            self._acc = (self._acc << 1) | ((value >> shift) & 1)
            self._used += 1
            if self._used == 8:
                self._out.append(self._acc)
                self._acc = self._used = 0

    def ue(self, value: int) -> None:
        code = value + 1
        self.u(0, code.bit_length() - 1)
        self.u(code, code.bit_length())

    def align(self) -> None:
        if self._used:
            self.u(0, 8 - self._used)

    def raw(self, data: bytes) -> None:
        self._out += data

    def rbsp(self) -> bytes:
        """Close with rbsp_trailing_bits."""
        self.u(1, 1)
        self.align()
        return bytes(self._out)


def _nal(header: int, rbsp: bytes) -> bytes:
    return bytes([header]) + _START_CODE_PREFIX.sub(b"\x00\x00\x03", rbsp)


def _sps(width: int, height: int) -> bytes:
    w = _BitWriter()
    w.u(_PROFILE_BASELINE, 8)
    w.u(_CONSTRAINED_BASELINE_FLAGS, 8)
    w.u(_LEVEL_3_0, 8)
    w.ue(0)  # seq_parameter_set_id
    w.ue(0)  # log2_max_frame_num_minus4
    w.ue(2)  # pic_order_cnt_type: output order = decoding order
    w.ue(1)  # max_num_ref_frames
    w.u(0, 1)  # gaps_in_frame_num_value_allowed_flag
    w.ue(width // _MB - 1)
    w.ue(height // _MB - 1)
    w.u(1, 1)  # frame_mbs_only_flag
    w.u(1, 1)  # direct_8x8_inference_flag
    w.u(0, 1)  # frame_cropping_flag
    w.u(0, 1)  # vui_parameters_present_flag
    return _nal(_NAL_SPS, w.rbsp())


def _pps() -> bytes:
    w = _BitWriter()
    w.ue(0)  # pic_parameter_set_id
    w.ue(0)  # seq_parameter_set_id
    w.u(0, 1)  # entropy_coding_mode_flag: CAVLC
    w.u(0, 1)  # bottom_field_pic_order_in_frame_present_flag
    w.ue(0)  # num_slice_groups_minus1
    w.ue(0)  # num_ref_idx_l0_default_active_minus1
    w.ue(0)  # num_ref_idx_l1_default_active_minus1
    w.u(0, 1)  # weighted_pred_flag
    w.u(0, 2)  # weighted_bipred_idc
    w.ue(0)  # pic_init_qp_minus26 (se(0) has the same code)
    w.ue(0)  # pic_init_qs_minus26
    w.ue(0)  # chroma_qp_index_offset
    w.u(0, 1)  # deblocking_filter_control_present_flag
    w.u(0, 1)  # constrained_intra_pred_flag
    w.u(0, 1)  # redundant_pic_cnt_present_flag
    return _nal(_NAL_PPS, w.rbsp())


def _planes(frame: Image.Image) -> tuple[bytes, bytes, bytes]:
    """4:2:0 studio-range planes; Pillow's YCbCr is full range (JPEG)."""
    y, cb, cr = frame.convert("YCbCr").split()
    half = (frame.width // 2, frame.height // 2)
    return (
        y.point(_LUMA_LEVELS).tobytes(),
        cb.resize(half, Image.Resampling.BOX).point(_CHROMA_LEVELS).tobytes(),
        cr.resize(half, Image.Resampling.BOX).point(_CHROMA_LEVELS).tobytes(),
    )


def _block(plane: bytes, stride: int, x: int, y: int, size: int) -> bytes:
    return b"".join(
        plane[(y + row) * stride + x : (y + row) * stride + x + size] for row in range(size)
    )


def _idr_slice(frame: Image.Image, idr_pic_id: int) -> bytes:
    luma, cb, cr = _planes(frame)
    w = _BitWriter()
    w.ue(0)  # first_mb_in_slice
    w.ue(7)  # slice_type: I, and so are all slices of the picture
    w.ue(0)  # pic_parameter_set_id
    w.u(0, 4)  # frame_num
    w.ue(idr_pic_id)  # consecutive IDR pictures must differ
    w.u(0, 1)  # no_output_of_prior_pics_flag
    w.u(0, 1)  # long_term_reference_flag
    w.ue(0)  # slice_qp_delta
    half = frame.width // 2
    for mb_y in range(0, frame.height, _MB):
        for mb_x in range(0, frame.width, _MB):
            w.ue(_MB_TYPE_I_PCM)
            w.align()  # pcm_alignment_zero_bits
            w.raw(_block(luma, frame.width, mb_x, mb_y, _MB))
            w.raw(_block(cb, half, mb_x // 2, mb_y // 2, _MB // 2))
            w.raw(_block(cr, half, mb_x // 2, mb_y // 2, _MB // 2))
    return _nal(_NAL_IDR, w.rbsp())


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full_box(kind: bytes, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", flags), *payload)


def _avc1(width: int, height: int, sps: bytes, pps: bytes) -> bytes:
    avcc = _box(
        b"avcC",
        bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]),
        struct.pack(">H", len(sps)),
        sps,
        bytes([1]),
        struct.pack(">H", len(pps)),
        pps,
    )
    compressor = b"\x0ckadr sandbox".ljust(32, b"\x00")
    return _box(
        b"avc1",
        bytes(6),
        struct.pack(">HHH12xHHIIIH", 1, 0, 0, width, height, 0x480000, 0x480000, 0, 1),
        compressor,
        struct.pack(">Hh", 0x18, -1),
        avcc,
    )


def _moov(
    width: int, height: int, sizes: Sequence[int], delta: int, avc1: bytes, offset: int
) -> bytes:
    duration = delta * len(sizes)
    sample_table = _box(
        b"stbl",
        _full_box(b"stsd", 0, struct.pack(">I", 1), avc1),
        _full_box(b"stts", 0, struct.pack(">III", 1, len(sizes), delta)),
        _full_box(b"stsc", 0, struct.pack(">IIII", 1, 1, len(sizes), 1)),
        _full_box(b"stsz", 0, struct.pack(f">II{len(sizes)}I", 0, len(sizes), *sizes)),
        _full_box(b"stco", 0, struct.pack(">II", 1, offset)),
    )
    media_info = _box(
        b"minf",
        _full_box(b"vmhd", 1, bytes(8)),
        _box(b"dinf", _full_box(b"dref", 0, struct.pack(">I", 1), _full_box(b"url ", 1))),
        sample_table,
    )
    media = _box(
        b"mdia",
        _full_box(b"mdhd", 0, struct.pack(">IIIIHH", 0, 0, _TIMESCALE, duration, 0x55C4, 0)),
        _full_box(b"hdlr", 0, bytes(4), b"vide", bytes(12), b"VideoHandler\x00"),
        media_info,
    )
    track_header = _full_box(
        b"tkhd",
        3,  # enabled, in movie
        struct.pack(">IIIII8xHHHH", 0, 0, 1, 0, duration, 0, 0, 0, 0),
        _UNITY_MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )
    movie_header = _full_box(
        b"mvhd",
        0,
        struct.pack(">IIIIIH10x", 0, 0, _TIMESCALE, duration, 0x10000, 0x100),
        _UNITY_MATRIX,
        bytes(24),
        struct.pack(">I", 2),
    )
    return _box(b"moov", movie_header, _box(b"trak", track_header, media))


def encode_mp4(frames: Sequence[Image.Image], fps: int) -> bytes:
    """Frames must share one size, a multiple of 16 on both sides."""
    width, height = frames[0].size
    if width % _MB or height % _MB:
        raise ValueError(f"frame size {width}x{height} is not a multiple of {_MB}")
    sps, pps = _sps(width, height), _pps()
    samples = [
        struct.pack(">I", len(nal)) + nal
        for nal in (_idr_slice(f, i % 2) for i, f in enumerate(frames))
    ]
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2avc1mp41")
    avc1 = _avc1(width, height, sps, pps)
    sizes = [len(s) for s in samples]
    delta = _TIMESCALE // fps
    # The chunk offset field has a fixed width, so a first pass tells the moov size.
    moov_size = len(_moov(width, height, sizes, delta, avc1, 0))
    moov = _moov(width, height, sizes, delta, avc1, len(ftyp) + moov_size + 8)
    return ftyp + moov + _box(b"mdat", *samples)
