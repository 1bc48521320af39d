"""Freestanding RV32IMAFD programs for the ISS, cross-compiled at build time.

riscv_elf(name = "x", srcs = [...], hdrs = [...]) makes `x.elf` with
Debian's gcc-riscv64-unknown-elf: -march=rv32imafd -mabi=ilp32d, no libc,
the program's own crt0 among `srcs`, linked at `link_address` (0x10000 for
programs that also run on qemu-riscv32, 0x80000000 for the cluster's DRAM).
"""

def riscv_elf(name, srcs, hdrs = [], link_address = "0x10000", copts = []):
    native.genrule(
        name = name + "_elf",
        srcs = srcs + hdrs,
        outs = [name + ".elf"],
        cmd = " ".join([
            "riscv64-unknown-elf-gcc",
            "-march=rv32imafd -mabi=ilp32d -O2",
            "-nostdlib -static -ffreestanding -fno-builtin",
            "-Wl,--no-warn-rwx-segments",
            "-Wl,-Ttext-segment=" + link_address,
        ] + copts + [
            "-I$$(dirname $(location %s))" % h
            for h in hdrs
        ] + ["-o $@"] + ["$(location %s)" % s for s in srcs]),
    )
