"""`crm-migrate init`: a new project folder with a commented migration.yaml."""

from __future__ import annotations

from pathlib import Path

from migrate.errors import ConfigError

TEMPLATE = Path(__file__).parent / "templates" / "migration.yaml"

MAPPING_EXAMPLE = """\
# A mapping: which source column feeds which canonical field (see docs/configuration.md).
id: customer_id            # the source's own id column (omit for exports without one)
updated_at: updated_at     # when the row last changed (used by `most_recent`)
fields:
  first_name: first_nm
  last_name: last_nm
  emails: [email]          # list fields take several columns; the first is primary
  phones: [phone, mobile]
  birth_date: {column: dob, format: "%d/%m/%Y"}
  country: country
"""


def scaffold(directory: Path) -> list[Path]:
    """Create ``directory`` with migration.yaml, data/ and mappings/; never overwrites a project."""
    config = directory / "migration.yaml"
    if config.exists():
        raise ConfigError(f"{config}: a project already exists here; edit it instead")
    (directory / "data").mkdir(parents=True, exist_ok=True)
    (directory / "mappings").mkdir(exist_ok=True)
    config.write_text(TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
    example = directory / "mappings" / "erp.example.yaml"
    example.write_text(MAPPING_EXAMPLE, encoding="utf-8")
    return [config, directory / "data", example]
