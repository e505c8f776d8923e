"""The builder's pure logic: ELF headers, account files, templates, config and space rules."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from synthetic_images import elf_header

from apiary.config import Settings
from image import accounts, build, config, elf, ext4, rootfs
from image.errors import ImageError

pytestmark = pytest.mark.image


@pytest.mark.parametrize(
    ("machine", "bits", "name"),
    [(62, 64, "x86-64"), (40, 32, "ARM (32-bit)"), (3, 32, "x86 (32-bit)"), (243, 64, "RISC-V")],
)
def test_wrong_architectures_are_named(machine: int, bits: int, name: str) -> None:
    with pytest.raises(ImageError, match="just binary") as err:
        elf.require_arm64(elf_header(machine, bits=bits), "dist/apiary/apiary")
    assert f"built for {name}" in str(err.value)


def test_aarch64_passes_and_non_elf_is_refused() -> None:
    assert elf.require_arm64(elf_header(183), "x").is_arm64
    with pytest.raises(ImageError, match="not an ELF executable"):
        elf.require_arm64(b"#!/bin/sh\necho hi\n", "apiary")
    big_endian = bytearray(elf_header(183))
    big_endian[5] = 2
    assert not elf.parse_header(bytes(big_endian)).is_arm64  # type: ignore[union-attr]


def test_host_true_is_read_like_any_elf() -> None:
    info = elf.parse_header(elf.read_header(Path("/bin/true")))
    assert info is not None and info.machine in elf.MACHINE_NAMES


BASE = accounts.AccountFiles(
    passwd="root:x:0:0:root:/root:/bin/bash\nsystemd-network:x:999:999::/:/usr/sbin/nologin\n",
    group="root:x:0:\nsystemd-network:x:999:\nsystemd-journal:x:998:\n",
    shadow="root:*:19500:0:99999:7:::\n",
    gshadow="root:*::\n",
)


def test_system_user_takes_the_highest_id_free_as_uid_and_gid() -> None:
    added = accounts.add_system_user(BASE, epoch=86400 * 19723)
    assert (added.uid, added.gid, added.created) == (997, 997, True)  # 999 user, 998 group
    assert added.files.passwd.endswith(
        "apiary:x:997:997:Apiary node:/var/lib/apiary:/usr/sbin/nologin\n"
    )
    assert added.files.group.endswith("apiary:x:997:\n")
    assert added.files.shadow.endswith("apiary:!*:19723::::::\n")  # locked, date from epoch
    assert len(added.files.shadow.splitlines()[-1].split(":")) == 9
    assert added.files.gshadow is not None and added.files.gshadow.endswith("apiary:!::\n")
    assert added.files.passwd.startswith(BASE.passwd)  # existing lines untouched


def test_existing_user_is_kept_and_orphan_group_is_refused() -> None:
    once = accounts.add_system_user(BASE, epoch=0)
    again = accounts.add_system_user(once.files, epoch=0)
    assert (again.created, again.uid, again.files) == (False, once.uid, once.files)
    orphan = accounts.AccountFiles(BASE.passwd, BASE.group + "apiary:x:500:\n", BASE.shadow, None)
    with pytest.raises(ValueError, match="group 'apiary' but no such user"):
        accounts.add_system_user(orphan, epoch=0)


def test_missing_final_newline_and_full_range() -> None:
    added = accounts.add_system_user(
        accounts.AccountFiles("root:x:0:0::/:/bin/sh", "root:x:0:", "root:*:1::::::", None),
        epoch=0,
    )
    assert added.files.passwd.splitlines()[1].startswith("apiary:x:999:999:")
    full = "".join(f"u{i}:x:{i}:{i}::/:/bin/false\n" for i in range(100, 1000))
    with pytest.raises(ValueError, match="no free system id"):
        accounts.free_system_id(full, "")


def test_settings_template_has_no_active_setting_and_its_keys_are_real() -> None:
    text = rootfs.template("apiary.toml").decode()
    assert tomllib.loads(text) == {}  # unedited: a standalone node on the card
    # Uncommenting the example lines gives settings Apiary accepts (names stay in step).
    uncommented = "\n".join(
        line[2:]
        for line in text.splitlines()
        if line.startswith("# ") and ("=" in line or "[" in line)
    )
    values = tomllib.loads(uncommented)
    assert set(values) == {"storage", "node_id", "credentials"}
    settings = Settings(**values)
    assert settings.credentials is not None and settings.node_id == "pi-kitchen"


def test_units_are_hardened_and_use_the_installed_layout() -> None:
    unit = rootfs.template("apiary.service").decode()
    for line in (
        "User=apiary",
        "ExecStart=/opt/apiary/apiary node --config /etc/apiary/apiary.toml",
        "ExecStartPre=-/opt/apiary/apiary hardware",
        "Environment=APIARY_HOME=/var/lib/apiary APIARY_CACHE_DIR=/var/cache/apiary",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "StateDirectory=apiary",
        "CacheDirectory=apiary",
        "MemoryMax=75%",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "WantedBy=multi-user.target",
    ):
        assert line in unit.splitlines(), line
    firstboot = rootfs.template("apiary-firstboot.service").decode()
    assert "Before=apiary.service" in firstboot
    assert f"ExecStart={rootfs.FIRSTBOOT}" in firstboot
    script = rootfs.template("apiary-firstboot").decode()
    assert script.startswith("#!/bin/sh\n")
    assert "chmod 0640" in script and "install -d -m 0750 -o root -g apiary" in script
    assert (
        rootfs.template("apiary.sysusers", id=996)
        .decode()
        .endswith('u apiary 996 "Apiary node" /var/lib/apiary /usr/sbin/nologin\n')
    )


def test_debugfs_script_quotes_paths_and_refuses_unsafe_names(tmp_path: Path) -> None:
    script = ext4.Script()
    script.write(tmp_path / "a b", "/opt/apiary/a b", mode=0o644)
    assert script.lines[0] == f'write "{tmp_path}/a b" "/opt/apiary/a b"'
    assert 'set_inode_field "/opt/apiary/a b" mode 0100644' in script.lines
    with pytest.raises(ImageError, match="quotes"):
        script.mkdir('/opt/a"b', mode=0o755)


def _fs(**overrides: int) -> ext4.FsInfo:
    values = dict(
        block_size=4096,
        block_count=100_000,
        free_blocks=50_000,
        reserved_blocks=5_000,
        free_inodes=10_000,
        inodes_per_group=8192,
        blocks_per_group=32768,
    )
    values.update(overrides)
    return ext4.FsInfo(**values, clean=True, needs_recovery=False)  # type: ignore[arg-type]


def test_growth_only_when_needed_and_aligned() -> None:
    root_end = 4 * 2**20 + 100_000 * 4096
    assert build.growth_needed(_fs(), 10 * 2**20, 100, root_end) == 0
    grow = build.growth_needed(_fs(), 380 * 2**20, 3000, root_end)
    assert grow > 380 * 2**20 - 45_000 * 4096 and (root_end + grow) % (4 * 2**20) == 0
    few_inodes = build.growth_needed(_fs(free_inodes=100), 2**20, 3000, root_end)
    assert few_inodes >= 32768 * 4096  # one more block group for its inodes


def test_space_check_names_both_amounts(tmp_path: Path) -> None:
    build.check_space(tmp_path, 10, free=11)
    with pytest.raises(ImageError, match=r"has 1\.00 GiB free but the build needs about 3\.00"):
        build.check_space(tmp_path, 3 * 2**30, free=2**30)


def test_config_checks_fields_before_any_work(tmp_path: Path) -> None:
    base = tmp_path / "base.img"
    base.write_bytes(b"x")
    with pytest.raises(ImageError, match="--base: .*does not exist"):
        config.load(base=tmp_path / "nope.img", binary=tmp_path, out=tmp_path / "o.img")
    with pytest.raises(ImageError, match=r"--out: .*\*\.img"):
        config.load(base=base, binary=tmp_path, out=tmp_path / "o.img.xz")
    with pytest.raises(ImageError, match="--out: the output folder .* does not exist"):
        config.load(base=base, binary=tmp_path, out=tmp_path / "missing" / "o.img")
    same = tmp_path / "copy.img"
    same.write_bytes(b"x")
    with pytest.raises(ImageError, match="out is the base image"):
        config.load(base=same, binary=tmp_path / "bin", out=same)
    with pytest.raises(ImageError, match="--source-date-epoch"):
        config.load(base=base, binary=tmp_path, out=tmp_path / "o.img", source_date_epoch=5)


def test_source_date_epoch_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert config.epoch_from_env() == config.DEFAULT_SOURCE_DATE_EPOCH
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1710000000")
    assert config.epoch_from_env() == 1710000000
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(ImageError, match="SOURCE_DATE_EPOCH"):
        config.epoch_from_env()


def test_memory_cgroup_is_added_once_keeping_every_argument() -> None:
    from image.cmdline import with_memory_cgroup

    line = "console=tty1 root=PARTUUID=ab-02 rootwait quiet\n"
    once = with_memory_cgroup(line)
    assert (
        once
        == "console=tty1 root=PARTUUID=ab-02 rootwait quiet cgroup_enable=memory cgroup_memory=1\n"
    )
    assert with_memory_cgroup(once) == once
    assert (
        with_memory_cgroup("a cgroup_disable=memory b")
        == "a b cgroup_enable=memory cgroup_memory=1"
    )
