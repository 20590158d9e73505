"""Manifest diff: create/update/delete per object, hooks ignored, Secret values never shown."""

from __future__ import annotations

from kestra_ops.workflows.deploy.diff import diff_manifests

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kestra-config, namespace: ns}\ndata: {a: '1'}\n"
SVC = "apiVersion: v1\nkind: Service\nmetadata: {name: kestra, namespace: ns}\nspec: {ports: [{port: 8080}]}\n"
HOOK = ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: post, namespace: ns, annotations: "
        "{helm.sh/hook: post-install}}\nspec: {}\n")


def secret(value: str) -> str:
    return f"apiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: ns}}\nstringData: {{password: {value}}}\n"


def test_no_changes_and_hooks_ignored():
    diff = diff_manifests("---\n".join([CM, SVC]), "---\n".join([CM, SVC, HOOK]))
    assert not diff.changed and diff.unchanged == 2
    assert diff.summary() == "no changes (2 objects unchanged)"


def test_create_update_delete():
    diff = diff_manifests("---\n".join([CM, SVC]), "---\n".join([CM.replace("'1'", "'2'"),
                                                                  secret("x")]))
    assert {(c.kind, c.action) for c in diff.changes} == {
        ("ConfigMap", "update"), ("Service", "delete"), ("Secret", "create")}
    update = next(c for c in diff.changes if c.action == "update")
    assert "-  a: '1'" in update.diff and "+  a: '2'" in update.diff
    assert diff.summary() == "1 to create, 1 to update, 1 to delete, 0 unchanged"


def test_secret_values_are_masked_but_changes_show():
    diff = diff_manifests(secret("OldPassw0rd"), secret("NewPassw0rd"))
    assert diff.changed
    assert "OldPassw0rd" not in diff.text() and "NewPassw0rd" not in diff.text()
    assert "<masked sha256:" in diff.text()
