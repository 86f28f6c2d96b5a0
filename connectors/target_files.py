"""Import files for CRMs reached through their own import tools: Salesforce and HubSpot CSV sets.

``salesforce_csv`` writes a Bulk API 2.0 / Data Loader *upsert* set keyed by an external id
field (``External_Id__c`` by default): ``1_Account/``, ``2_Contact/``, ``3_Order/``, parents
before children, children pointing at parents by external id (``Account.External_Id__c``).
``hubspot_csv`` writes ``1_companies/``, ``2_contacts/``, ``3_deals/`` with a unique
``legacy_id`` property and the parent's id in the child's row for associations.

Each batch is one CSV file (one Bulk API ingest job), numbered in load order and written
atomically (a temporary file, then a rename), so a kill never leaves half a file. The files
are the target's state: a rerun reads them to see which keys are exported and with which
values, exactly as a database target looks up its rows, so the ledger, rollback and
reconciliation work unchanged. Upload the folders in order; a later file's row for a key
supersedes an earlier one (that is what upsert does).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from connectors.targets import BatchPlan, RecordPlan, Target, canonical, results_frame, row_checksums

#: kind -> entity -> (folder, {reference column: header}); ``{ext}`` is the external id field.
#: A header starting with ``!`` takes the negated boolean (Salesforce stores opt-outs).
LAYOUTS: dict[str, dict[str, tuple[str, dict[str, str]]]] = {
    "salesforce_csv": {
        "accounts": ("1_Account", {
            "name": "Name", "phone": "Phone", "street": "BillingStreet", "city": "BillingCity",
            "region": "BillingState", "postcode": "BillingPostalCode", "country": "BillingCountry"}),
        "contacts": ("2_Contact", {
            "title": "Salutation", "first_name": "FirstName", "middle_name": "MiddleName", "last_name": "LastName",
            "suffix": "Suffix", "email": "Email", "phone": "Phone", "street": "MailingStreet",
            "city": "MailingCity", "region": "MailingState", "postcode": "MailingPostalCode",
            "country": "MailingCountry", "birth_date": "Birthdate", "email_opt_in": "!HasOptedOutOfEmail",
            "do_not_contact": "DoNotCall"}),
        "orders": ("3_Order", {
            "account_key": "Account.{ext}", "contact_key": "BillToContact.{ext}", "occurred_on": "EffectiveDate",
            "amount": "Legacy_Amount__c", "currency": "Legacy_Currency__c", "status": "Legacy_Status__c"}),
    },
    "hubspot_csv": {
        "accounts": ("1_companies", {
            "name": "name", "phone": "phone", "street": "address", "city": "city", "region": "state",
            "postcode": "zip", "country": "country"}),
        "contacts": ("2_contacts", {
            "first_name": "firstname", "last_name": "lastname", "email": "email", "phone": "phone",
            "company": "company", "street": "address", "city": "city", "region": "state", "postcode": "zip",
            "country": "country", "birth_date": "date_of_birth"}),
        "orders": ("3_deals", {
            "contact_key": "contact_{ext}", "account_key": "company_{ext}", "occurred_on": "closedate",
            "amount": "amount", "status": "dealstage", "currency": "deal_currency_code"}),
    },
}
DEFAULT_EXTERNAL_ID = {"salesforce_csv": "External_Id__c", "hubspot_csv": "legacy_id"}


class FileTarget(Target):
    """A folder of CRM import files.

    Example:
        >>> import tempfile
        >>> t = FileTarget("salesforce_csv", Path(tempfile.mkdtemp()))
        >>> rows = pd.DataFrame({"external_id": ["G-1"], "name": ["Acme Ltd"]})
        >>> t.write("accounts", rows, t.checksums("accounts", rows), lambda plan: None, set())["status"].tolist()
        ['success']
        >>> sorted(p.name for p in t.folder.rglob("*.csv"))
        ['000001.csv']
    """

    assigns_ids = False

    def __init__(self, kind: str, folder: Path, external_id_field: str | None = None):
        self.kind = kind
        self.folder = folder
        self.ext = external_id_field or DEFAULT_EXTERNAL_ID[kind]
        self.layout = {e: (d, {c: h.format(ext=self.ext) for c, h in cols.items()})
                       for e, (d, cols) in LAYOUTS[kind].items()}
        #: The effective export per entity, read from the files once and kept current by appends.
        self._state: dict[str, pd.DataFrame] = {}

    def describe(self) -> str:
        """The export folder and kind."""
        return f"{self.kind} files in {self.folder}"

    def entities(self) -> tuple[str, ...]:
        """Entities this CRM's import files hold, parents first."""
        return tuple(self.layout)

    def preflight(self) -> None:
        """The folder must be creatable and writable."""
        from migrate.errors import TargetError

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = self.folder / ".write-test"
            probe.write_text("", encoding="utf-8")
            probe.unlink()
        except OSError as exc:
            raise TargetError(f"{self.describe()}: cannot write there: {exc.strerror}") from None

    def _export(self, entity: str, rows: pd.DataFrame) -> pd.DataFrame:
        """Rows as the import file's columns, every value as text (or None)."""
        cols = self.layout[entity][1]
        out = pd.DataFrame({self.ext: rows["external_id"].astype(str)}, index=rows.index)
        for ref, header in cols.items():
            values = rows[ref] if ref in rows.columns else pd.Series(None, index=rows.index, dtype=object)
            if header.startswith("!"):
                header, values = header[1:], values.astype(object).map(lambda v: not v, na_action="ignore")
            if values.astype(object).map(type).eq(bool).any():
                values = values.astype(object).map(lambda v: "true" if v else "false", na_action="ignore")
            out[header] = values.astype(object).map(str, na_action="ignore").where(values.notna(), None)
        return out

    def checksums(self, entity: str, rows: pd.DataFrame) -> pd.Series:
        """Checksum per row of the exported text."""
        return self._sums(self._export(entity, rows))

    def _sums(self, exported: pd.DataFrame) -> pd.Series:
        return row_checksums({c: canonical(exported[c], "text") for c in exported.columns}, exported.index)

    def _dir(self, entity: str) -> Path:
        return self.folder / self.layout[entity][0]

    def _latest(self, entity: str) -> pd.DataFrame:
        """The effective export: every key's row from the last file holding it, indexed by key."""
        if entity not in self._state:
            files = sorted(self._dir(entity).glob("*.csv"))
            frames = [pd.read_csv(f, dtype=str, keep_default_na=False, na_values=[""]) for f in files]
            self._state[entity] = _effective(frames, self.ext)
        return self._state[entity]

    def write(self, entity: str, rows: pd.DataFrame, sums: pd.Series, record: RecordPlan,
              known: set[str]) -> pd.DataFrame:
        """Append the new and changed rows as the next numbered file; see :meth:`Target.write`."""
        exported = self._export(entity, rows)
        keys = exported[self.ext].tolist()
        latest = self._latest(entity)
        there = latest.loc[latest.index.isin(keys)]
        old = self._sums(there[exported.columns]) if len(there) else pd.Series(dtype=object)
        new_sums = dict(zip(keys, sums))
        changed = [k for k in there.index if old[k] != new_sums[k]]
        plan = BatchPlan(new=[k for k in keys if k not in there.index], changed=changed,
                         unchanged=[k for k in there.index if old[k] == new_sums[k]],
                         images={k: there.loc[k].to_dict() for k in changed})
        record(plan)
        send = exported[exported[self.ext].isin(set(plan.new) | set(changed))]
        if len(send):
            self._append(entity, send)
        created = set(plan.new)
        return results_frame([(k, "success", k, k in created, None) for k in keys])

    def _append(self, entity: str, frame: pd.DataFrame) -> None:
        folder = self._dir(entity)
        folder.mkdir(parents=True, exist_ok=True)
        numbers = [int(p.stem) for p in folder.glob("*.csv") if p.stem.isdigit()]
        _write_atomic(folder / f"{max(numbers, default=0) + 1:06d}.csv", frame)
        self._state[entity] = _effective([self._latest(entity), frame], self.ext)

    def existing(self, entity: str, keys: list[str]) -> pd.DataFrame:
        """``external_id, target_id, checksum`` of exported rows among ``keys``."""
        back = self.read_back(entity)
        return back[back["external_id"].isin(keys)]

    def read_back(self, entity: str) -> pd.DataFrame:
        """Every exported key with its checksum (the target id of a file export is the external id)."""
        latest = self._latest(entity)
        if latest.empty:
            return pd.DataFrame(columns=["external_id", "target_id", "checksum"])
        headers = [self.ext, *(h.lstrip("!") for h in self.layout[entity][1].values())]
        frame = latest.reindex(columns=headers)
        return pd.DataFrame({"external_id": latest.index, "target_id": latest.index,
                             "checksum": self._sums(frame).to_numpy()})

    def delete(self, entity: str, keys: list[str]) -> int:
        """Remove every row of these keys from the files (an empty file goes)."""
        gone = set(keys)
        deleted = 0
        self._state.pop(entity, None)
        for path in sorted(self._dir(entity).glob("*.csv")):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
            keep = ~frame[self.ext].isin(gone)
            if keep.all():
                continue
            deleted += int((~keep).sum())
            if keep.any():
                _write_atomic(path, frame[keep])
            else:
                path.unlink()
        return deleted

    def restore(self, entity: str, images: dict[str, dict[str, Any]]) -> int:
        """Export the before-images again as the next file, so they supersede the phase's rows."""
        if images:
            self._append(entity, pd.DataFrame(list(images.values())))
        return len(images)


def _effective(frames: list[pd.DataFrame], key: str) -> pd.DataFrame:
    """The last row per key over frames in file order, indexed by key, missing values as None."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=[key])
    frame = pd.concat(frames).drop_duplicates(key, keep="last")
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.set_index(frame[key].to_numpy())


def _write_atomic(path: Path, frame: pd.DataFrame) -> None:
    tmp = path.with_suffix(".tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)
