#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/ (committed; rerun after a
format change). Checkpoint seeds need the synth tool built (version 1 is one byte away
from version 2's header, which libFuzzer finds):
  bazel build //model:synth && tests/fuzz/make_seeds.py
"""
import json
import os
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests/fuzz/corpus")
MODELS = os.path.join(ROOT, "../shared/models")


def write(kind, name, data):
    d = os.path.join(CORPUS, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def f32(x):
    return struct.pack("<f", x)


def sampler():
    nan, inf = float("nan"), float("inf")
    logits = [1.0, 3.0, 2.0, 0.5, -1.0, 2.5, 0.0, 1.5]
    cases = {
        "plain": (1.0, 0, 1.0, 1, logits),
        "greedy": (0.0, 0, 1.0, 2, logits),
        "top_k": (0.8, 2, 1.0, 3, logits),
        "top_p": (1.2, 0, 0.5, 4, logits),
        "subnormal_temperature_top_p": (1e-45, 0, 0.9, 5, logits),  # Was SIGSEGV.
        "nan_logits": (1.0, 0, 0.9, 6, [nan] * 8),
        "inf_logits": (1.0, 3, 0.9, 7, [1.0, inf, -inf, inf]),
        "one_token": (1.0, 0, 0.5, 8, [0.25]),
    }
    for name, (t, k, p, seed, l) in cases.items():
        write("sampler", name, f32(t) + struct.pack("<i", k) + f32(p) +
              struct.pack("<Q", seed) + b"".join(f32(x) for x in l))


def chunks(*pieces):
    return b"".join(bytes([len(p)]) + p for p in pieces)


def text_stream():
    write("text_stream", "no_stops", b"\x00" + chunks(b"Once", b" upon", b" a"))
    write("text_stream", "split_char",
          b"\x00" + chunks(b"caf", b"\xc3", b"\xa9", b"\xe2\x82", b"\xac"))
    write("text_stream", "stop_across_tokens",
          b"\x01" + bytes([3]) + b"Lil" + chunks(b"a L", b"i", b"ly"))
    write("text_stream", "invalid_bytes", b"\x00" + chunks(b"\xff\xfe", b"\xc3"))
    write("text_stream", "two_stops",
          b"\x02" + bytes([1]) + b"\n" + bytes([2]) + b"\xc3\xa9" +
          chunks(b"one", b"\xc3", b"\xa9", b"\n"))


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def field(number, wire, payload):
    tag = varint(number << 3 | wire)
    if wire == 2:
        return tag + varint(len(payload)) + payload
    return tag + payload


def request():
    ok = (field(1, 2, b"Once upon a time") + field(2, 0, varint(32)) +
          field(3, 5, f32(0.8)) + field(4, 0, varint(40)) +
          field(5, 5, f32(0.95)) + field(6, 0, varint(42)) +
          field(7, 2, b"\n\n") + field(9, 2, b"cpu") + field(11, 2, b"req-1") +
          field(12, 0, varint(3)))
    write("request", "full", ok)
    write("request", "empty", b"")
    write("request", "bad_utf8_prompt", field(1, 2, b"Once \xff"))
    write("request", "bad_utf8_stop", field(7, 2, b"ok") + field(7, 2, b"\xc3"))
    write("request", "control_request_id", field(11, 2, b"a\nb\x1b[31m"))
    write("request", "bad_top_p", field(5, 5, f32(2.0)))
    write("request", "nan_temperature", field(3, 5, f32(float("nan"))))
    write("request", "truncated", ok[:-3])
    write("request", "unknown_fields", field(99, 0, varint(1)) + field(1, 0, varint(5)))
    write("request", "pin_without_device", field(10, 0, varint(1)))


def tokenizer():
    with open(os.path.join(MODELS, "tok512.bin"), "rb") as f:
        tok = f.read()
    text = "Once upon a time, caf\u00e9 \U0001F600".encode()
    write("tokenizer", "tok512", struct.pack("<HH", 512 - 3, len(text)) + text + tok)
    # A hand-made three-token vocabulary: max length, then score, len, bytes.
    tiny = struct.pack("<i", 5)
    for piece in [b"<unk>", b"<s>", b"</s>"]:
        tiny += f32(0.0) + struct.pack("<i", len(piece)) + piece
    write("tokenizer", "tiny", struct.pack("<HH", 0, 3) + b"abc" + tiny)
    write("tokenizer", "bad_length", struct.pack("<HH", 0, 1) + b"a" +
          struct.pack("<i", 5) + f32(0.0) + struct.pack("<i", -7))


# Bridge frames (device/riscv/sim/protocol.md), as sim_message_fuzzer reads
# them: a flags byte (bit 0 the session, bit 1 a reply to the driver), then
# the 16-byte header and its payload.
SIM_TOKEN = b"fuzz-token"


def frame(opcode, payload, session=0, version=2, announce=None):
    n = len(payload) if announce is None else announce
    return (bytes([session]) + struct.pack("<IHHII", 0x5356524A, version, opcode, 7, n) +
            payload)


def u64s(*values):
    return b"".join(struct.pack("<Q", v % (1 << 64)) for v in values)


def hello(session=0, token=SIM_TOKEN):
    return frame(1, struct.pack("<HI", 2, len(token)) + token, session)


def launch(kernel, *args, session=0):
    return frame(7, struct.pack("<II", kernel, len(args)) + u64s(*args), session)


SIM_DESCRIPTION = b"snitch: 1 cluster x 8 cores, 1 GHz, fp32"


def hello_reply_data(description=SIM_DESCRIPTION):
    # version, clusters, cores_per_cluster, frequency_hz, tcdm_bytes,
    # hbm_bytes, precision, then the description as a string.
    return (struct.pack("<HIIdQQI", 2, 1, 8, 1e9, 128 << 10, 1 << 20, 1) +
            struct.pack("<I", len(description)) + description)


def reply_to_driver(payload, announce=None):
    return frame(1 | 0x8000, payload, session=2, announce=announce)


def sim_message():
    ones = b"".join(f32(1.0) for _ in range(64))
    setup = hello() + frame(3, u64s(0) + ones * 4)  # 1 KiB of 1.0 at 0.
    counters = frame(9, b"")
    kernels = {
        "gemm": launch(1, 0, 256, 512, 4, 8, 2, 0, 1020),
        "rmsnorm": launch(2, 0, 64, 512, 2, 16, 1020),
        "rope": launch(3, 512, 256, 1, 16, 0, 8, 8, 8, 4, 1020),
        "attention": launch(4, 0, 8, 512, 768, 1, 2, 1, 4, 1020),
        "swiglu": launch(5, 0, 512, 2, 8, 1020),
        "copy": launch(6, 768, 1, 1020),
    }
    write("sim_message", "attention_descriptor",
          setup + frame(3, u64s(768) + u64s(0, 64, 2)) + kernels["attention"] +
          frame(8, u64s(1)) + counters)
    descriptors = {"copy": frame(3, u64s(768) + u64s(0, 256, 64))}
    for name, k in kernels.items():
        write("sim_message", name,
              setup + descriptors.get(name, b"") + k + frame(8, u64s(1)) + counters)
    write("sim_message", "read_poll_reset",
          setup + frame(4, u64s(0, 64)) + frame(5, u64s(0) + struct.pack("<III", ~0 & 0xFFFFFFFF, 0x3F800000, 10)) +
          frame(2, b"") + frame(4, u64s(0, 8)))
    # The attacks: offsets that wrap past 2^64, a product of heads
    # and head size that wraps to 0, a foreign session's RESET, WRITE_MEM
    # and READ_MEM, and a header announcing 64 MiB before any HELLO.
    write("sim_message", "rope_wrapping_offset",
          setup + launch(3, 512, 256, 1, 16, 2**64 - 8, 8, 8, 8, 4, 0))
    write("sim_message", "attention_wrapping_heads",
          setup + launch(4, 0, 8, 512, 768, 1, 2**32, 1, 2**32, 0))
    write("sim_message", "foreign_session",
          setup + hello(1) + frame(2, b"", 1) + frame(3, u64s(0) + ones, 1) +
          frame(4, u64s(0, 64), 1) + launch(1, 0, 0, 0, 2**63, 2**63, 2, 0, 0, session=1) +
          frame(8, u64s(1)))
    write("sim_message", "wrong_token", hello(0, b"guess") + frame(4, u64s(0, 64)))
    write("sim_message", "huge_header_before_hello", frame(3, b"", announce=64 << 20))
    write("sim_message", "bad_version", frame(1, b"", version=1))
    # The driver's side (flag bit 1): replies to its HELLO, as
    # EncodeHelloReply writes them after an OK status, then damaged.
    data = hello_reply_data()
    ok = struct.pack("<iI", 0, 0)
    replies = {
        "hello_reply": ok + data,
        "hello_reply_truncated": ok + data[:-1],
        "hello_reply_no_description": ok + data[:-len(SIM_DESCRIPTION) - 4],
        "hello_reply_cut_in_fixed_fields": ok + data[:13],
        "hello_reply_trailing_byte": ok + data + b"\0",
        "hello_reply_description_too_long": ok + data[:-len(SIM_DESCRIPTION) - 4] +
        struct.pack("<I", 0xFFFFFFFF) + SIM_DESCRIPTION,
        "hello_reply_error": struct.pack("<iI", 14, 4) + b"busy",
        "hello_reply_bad_status": struct.pack("<iI", 99, 0) + data,
        "hello_reply_empty": b"",
    }
    for name, payload in replies.items():
        write("sim_message", name, reply_to_driver(payload))
    # Headers announcing more than arrives, and less (the rest is then read
    # as the next record).
    write("sim_message", "hello_reply_announces_more",
          reply_to_driver(ok + data, announce=len(ok + data) + 100))
    write("sim_message", "hello_reply_announces_less",
          reply_to_driver(ok + data, announce=len(ok + data) - 8))


# HTTP bodies as openai_request_fuzzer reads them: what (0 completions,
# 1 chat, 2 template file), limits (< 0x80 the defaults), then the bytes.
COMPLETIONS, CHAT, TEMPLATE = 0, 1, 2
DEFAULT_LIMITS, SMALL_LIMITS = 0x00, 0xA5  # Small: 2 prompts, n <= 2, 3 choices.


def openai(what, body, limits=DEFAULT_LIMITS):
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return bytes([what, limits]) + body


def openai_request():
    full = {"model": "stories260K", "prompt": ["Once upon", "A cat"], "n": 2,
            "max_tokens": 16, "temperature": 0.8, "top_p": 0.95, "top_k": 40,
            "seed": 42, "stop": ["\n\n", "The end"], "stream": True,
            "stream_options": {"include_usage": True}, "logprobs": 3,
            "user": "u-1", "device": "cpu", "pin_device": False,
            "ignore_eos": False, "priority": -3, "request_id": "req-1",
            "presence_penalty": 0, "best_of": 1, "tools": [],
            "tool_choice": "none", "response_format": {"type": "text"},
            "modalities": ["text"], "unknown": {"ignored": [1, 2]}}
    chat = {"model": "stories260K", "messages": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Once "},
                                     {"type": "text", "text": "upon"}]},
        {"role": "assistant", "content": "a time", "name": "a"},
        {"role": "user", "content": "go on"}],
        "max_completion_tokens": 8, "logprobs": True, "top_logprobs": 5,
        "stream": True, "stream_options": {"include_usage": False}}
    seeds = {
        "completions_full": openai(COMPLETIONS, full),
        "completions_small_limits": openai(COMPLETIONS, full, SMALL_LIMITS),
        "completions_echo_logprobs": openai(
            COMPLETIONS, {"model": "m", "prompt": "x", "echo": True, "logprobs": 0}),
        "chat_full": openai(CHAT, chat),
        "chat_small_limits": openai(CHAT, chat, SMALL_LIMITS),
        "chat_image_part": openai(CHAT, {"model": "m", "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}),
        "chat_tool_role": openai(CHAT, {"model": "m", "messages": [
            {"role": "tool", "content": "x"}], "top_logprobs": 2}),
        "stream_options_without_stream": openai(
            COMPLETIONS, {"model": "m", "prompt": "x", "stream_options": {}}),
        "bad_types": openai(COMPLETIONS, b'{"model": 1, "prompt": [1, 2], "n": "2", '
                            b'"temperature": "hot", "stop": [null], "stream": 1}'),
        "token_ids": openai(COMPLETIONS, b'{"model": "m", "prompt": [[1, 2]]}'),
        "not_object": openai(CHAT, b'[{"model": "m"}]'),
        "truncated": openai(CHAT, json.dumps(chat).encode()[:-9]),
        "deep_nesting": openai(COMPLETIONS, b"[" * 10000),
        "deep_object": openai(CHAT, b'{"model": "m", "messages": ' + b"[" * 5000 +
                              b"]" * 5000 + b"}"),
        "huge_numbers": openai(COMPLETIONS, b'{"model": "m", "prompt": "x", '
                               b'"temperature": 1e999}'),
        "huge_integers": openai(COMPLETIONS, b'{"model": "m", "prompt": "x", '
                                b'"n": 18446744073709551616, "max_tokens": '
                                b'18446744073709551615, "seed": -9223372036854775809}'),
        "negative_zero": openai(COMPLETIONS, b'{"model": "m", "prompt": "x", '
                                b'"priority": -0, "temperature": -0.0, '
                                b'"top_k": -1, "seed": -0, "stop": []}'),
        "zero_n": openai(COMPLETIONS, b'{"model": "m", "prompt": "x", "n": -0}'),
        "float_max_tokens": openai(COMPLETIONS, b'{"model": "m", "prompt": "x", '
                                   b'"max_tokens": 1.0}'),
        "unicode_escapes": openai(CHAT, b'{"model": "m", "messages": [{"role": '
                                  b'"user", "content": "caf\\u00e9 \\ud83d\\ude00 '
                                  b'\\u0000"}], "user": "\\u00e9"}'),
        "lone_surrogate": openai(COMPLETIONS, b'{"model": "m", "prompt": "\\ud800"}'),
        "lone_low_surrogate": openai(COMPLETIONS, b'{"model": "m", "prompt": "a\\udc00"}'),
        "raw_surrogate_utf8": openai(COMPLETIONS, b'{"model": "m", "prompt": "\xed\xa0\x80"}'),
        "bad_utf8": openai(CHAT, b'{"model": "\xff", "messages": []}'),
        # Was an uncaught nlohmann::json::type_error (value("type", "")).
        "response_format_type_number": openai(
            COMPLETIONS, {"model": "m", "prompt": "x", "response_format": {"type": 1}}),
        # Was a stack overflow: the part's "type" was copied, recursively.
        "deep_part_type": openai(
            CHAT, b'{"model": "m", "messages": [{"role": "user", "content": '
            b'[{"type": ' + b"[" * 30000 + b"]" * 30000 + b'}]}]}'),
        "template": openai(TEMPLATE, {
            "system": "<<SYS>>\n{content}\n<</SYS>>\n\n",
            "user": "[INST] {content} [/INST]", "assistant": " {content} ",
            "generation_prompt": ""}),
        "template_no_generation_prompt": openai(TEMPLATE, {
            "system": "S: {content}", "user": "U: {content}{content}",
            "assistant": "A: {content}"}),
        "template_unknown_key": openai(TEMPLATE, {
            "system": "{content}", "user": "{content}", "assistant": "{content}",
            "tool": "{content}"}),
        "template_missing_key": openai(TEMPLATE, {"system": "{content}",
                                                  "user": "{content}"}),
        "template_not_string": openai(TEMPLATE, {
            "system": "{content}", "user": ["{content}"], "assistant": "{content}"}),
        "template_too_long": openai(TEMPLATE, {
            "system": "{content}" + "x" * 4096, "user": "{content}",
            "assistant": "{content}"}),
        "template_not_json": openai(TEMPLATE, b"system: {content}"),
    }
    for name, data in seeds.items():
        write("openai_request", name, data)


def checkpoints():
    bin_dir = os.path.join(ROOT, "bazel-bin/model")
    synth = os.path.join(bin_dir, "synth")
    if not os.path.exists(synth):
        sys.exit("build //model:synth and //model:convert_tool first")
    d = os.path.join(CORPUS, "checkpoint")
    os.makedirs(d, exist_ok=True)
    shape = ["--dim=16", "--hidden_dim=32", "--n_layers=2", "--n_heads=4",
             "--n_kv_heads=2", "--vocab_size=32", "--seq_len=8"]
    for version, shared in [(0, "true"), (0, "false"), (2, "true")]:
        out = os.path.join(d, f"tiny_v{version}_shared_{shared}")
        subprocess.run([synth, f"--version={version}", f"--output={out}",
                        f"--shared_classifier={shared}"] + shape, check=True)
    with open(f"{d}/tiny_v2_shared_true", "rb") as f:
        v2 = f.read()
    write("checkpoint", "truncated_v2", v2[: len(v2) // 2])
    write("checkpoint", "header_only_v2", v2[:256])


def gguf_string(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gguf_kv(key, type_, value):
    return gguf_string(key) + struct.pack("<I", type_) + value


def gguf_file(kvs, tensors, version=3, align=32):
    """tensors: (name, dims, ggml type, data bytes)."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    out += b"".join(kvs)
    offset, datas = 0, b""
    for name, dims, type_, data in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", type_, offset)
        pad = (-len(data)) % align
        datas += data + b"\0" * pad
        offset += len(data) + pad
    out += b"\0" * ((-len(out)) % align)
    return out + datas


def gguf():
    f32 = struct.pack("<32f", *[i / 8 for i in range(32)])
    q8 = struct.pack("<H", 0x3c00) + bytes(range(32))
    q4 = struct.pack("<H", 0x3c00) + bytes(range(16))
    kvs = [
        gguf_kv("general.architecture", 8, gguf_string("llama")),
        gguf_kv("general.alignment", 4, struct.pack("<I", 32)),
        gguf_kv("u8", 0, b"\x07"), gguf_kv("i16", 3, struct.pack("<h", -3)),
        gguf_kv("u64", 10, struct.pack("<Q", 2**63 + 1)),
        gguf_kv("f64", 12, struct.pack("<d", 0.5)), gguf_kv("b", 7, b"\x01"),
        gguf_kv("tokenizer.ggml.tokens", 9,
                struct.pack("<IQ", 8, 2) + gguf_string("a") + gguf_string("\u2581b")),
        gguf_kv("tokenizer.ggml.scores", 9, struct.pack("<IQ2f", 6, 2, 0.0, -1.0)),
    ]
    tensors = [("f32", [32], 0, f32), ("q8", [32], 8, q8), ("q4", [32], 2, q4),
               ("f16", [16], 1, f32[:32]), ("k", [256], 12, b"\0" * 144)]
    write("gguf", "container_v3", gguf_file(kvs, tensors))
    write("gguf", "container_v2", gguf_file(kvs[:3], tensors[:2], version=2))
    whole = gguf_file(kvs, tensors)
    write("gguf", "truncated", whole[: len(whole) * 2 // 3])
    bin_dir = os.path.join(ROOT, "bazel-bin/model")
    export = os.path.join(bin_dir, "gguf_export_tool")
    synth = os.path.join(bin_dir, "synth")
    if not (os.path.exists(export) and os.path.exists(synth)):
        sys.exit("build //model:synth and //model:gguf_export_tool first")
    tiny = "/tmp/joule_seed_tiny.bin"
    subprocess.run([synth, "--version=0", f"--output={tiny}", "--dim=32",
                    "--hidden_dim=32", "--n_layers=1", "--n_heads=2",
                    "--n_kv_heads=1", "--vocab_size=512", "--seq_len=8",
                    "--shared_classifier=false"], check=True)
    out = os.path.join(CORPUS, "gguf", "tiny_llama_q4_0")
    subprocess.run([export, f"--model={tiny}",
                    f"--tokenizer={MODELS}/tok512.bin", "--type=q4_0",
                    f"--output={out}"], check=True)


if __name__ == "__main__":
    sampler()
    text_stream()
    request()
    tokenizer()
    sim_message()
    openai_request()
    if "--no-checkpoints" not in sys.argv:
        checkpoints()
        gguf()
