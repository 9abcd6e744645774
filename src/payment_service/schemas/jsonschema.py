"""JSON Schemas of the Kafka messages, generated from the models and committed under `json/`.

Another team can produce `payment.process/v1` without reading our code; CI checks the committed
files are current (`payment-service schemas --check`).
"""

from __future__ import annotations

import json
from pathlib import Path

from payment_service.schemas.messages import PUBLISHED_MESSAGES

SCHEMA_DIR = Path(__file__).with_name("json")


def render() -> dict[str, str]:
    """File name -> JSON Schema text, for every published message type."""
    out: dict[str, str] = {}
    for name, model in PUBLISHED_MESSAGES.items():
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"urn:payment-service:{name}"
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def write(directory: Path = SCHEMA_DIR) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    files = render()
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return sorted(files)


def stale(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of committed schema files that differ from the models (or are missing)."""
    return [
        name
        for name, text in render().items()
        if not (directory / name).exists() or (directory / name).read_text("utf-8") != text
    ]
