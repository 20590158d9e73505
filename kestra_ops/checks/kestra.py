"""Kestra itself, through its API: the flows endpoint answers (``kestra-api``), the configured
credentials log in and ``basicAuthValidationErrors`` is empty (``login``), and a throw-away flow
runs to SUCCESS (``e2e-flow``).

The e2e flow has a unique id in namespace ``kestra-ops.checks`` and one core Log task; it is
deleted in a ``finally`` (a failed run, a timeout, an error and Ctrl-C included). A cleanup that
fails is reported, never hidden.
"""

from __future__ import annotations

import datetime
import secrets
import threading
import time
from dataclasses import dataclass, field

from kestra_ops.checks.declare import Check
from kestra_ops.results import FAIL, PASS, WARN, Item

ORDER = 40

E2E_NAMESPACE = "kestra-ops.checks"
E2E_TASK_TYPE = "io.kestra.plugin.core.log.Log"
E2E_LABEL = ("kestra-ops", "post-deploy-check")
PASSWORD_RULE = "8+ characters with an upper-case letter, a lower-case letter and a digit"
USERNAME_RULE = "an e-mail address (name@domain)"


# --------------------------------------------------------------------------- kestra-api

def check_api(url: str, answered: bool, error: Exception | None = None,
              sample: str | None = None) -> Item:
    """The ``kestra-api`` item: the flows search answered (``sample``: a flow it listed)."""
    from kestra_ops.errors import PermissionDenied

    if error is None and answered:
        seen = f"e.g. {sample}" if sample else "no flows yet"
        return Item("kestra-api", PASS, f"Kestra at {url} answers on the flows endpoint "
                    f"({seen})")
    if isinstance(error, PermissionDenied) and "Kestra refused" in str(error):
        return Item("kestra-api", WARN, f"Kestra at {url} answers on the flows endpoint "
                    "but refused the credentials (see the login check)", [str(error)])
    return Item("kestra-api", FAIL, str(error or f"Kestra at {url} did not answer"))


def fetch_api(client) -> tuple[bool, Exception | None, str | None]:
    """(answered?, error, one flow it listed): one page of one flow, not the whole list."""
    from kestra_ops.errors import KestraOpsError

    try:
        first = next(iter(client.search_flows(page_size=1)), None)
    except KestraOpsError as err:
        return False, err, None
    return True, None, f"{first.get('namespace')}.{first.get('id')}" if first else None


# --------------------------------------------------------------------------- login

def username_problems(username: str | None) -> list[str]:
    from kestra_ops.values.rules import USERNAME_RE

    if not username:
        return ["no username configured"]
    if len(username) > 256 or not USERNAME_RE.match(username):
        return [f"username {username!r} is not {USERNAME_RULE}"]
    return []


def about_credentials(error: Exception | None) -> bool:
    """Kestra itself refused the credentials (401/403 from Kestra, not from the API server's
    service proxy); a 5xx, a timeout or no connection says nothing about them."""
    from kestra_ops.errors import PermissionDenied

    return isinstance(error, PermissionDenied) and bool(getattr(error, "credentials", False))


def check_login(username: str | None, configs: dict | None, errors: list[str] | None,
                error: Exception | None = None) -> Item:
    """The ``login`` item: ``configs`` (unauthenticated), then ``basicAuthValidationErrors``
    read with the credentials (``error``: why that call failed). Kestra's username/password
    rule is shown only when the failure is about them: refused credentials, validation errors,
    basic auth not initialised, or a username that breaks the rule."""
    who = f"user {username}" if username else "no user"
    details = [f"rule: the username is {USERNAME_RULE}; the password has {PASSWORD_RULE}"]
    if configs is not None and configs.get("isBasicAuthInitialized") is False:
        return Item("login", FAIL, "Kestra's basic auth is not initialised: the "
                    "server's kestra.server.basic-auth credentials were refused at start",
                    (errors or []) + details, data=[{"error": e} for e in errors or []])
    if error is not None:
        problems = username_problems(username)
        hint = details if problems or about_credentials(error) else []
        return Item("login", FAIL, f"login as {who} failed: {error}", problems + hint)
    if errors:
        return Item("login", FAIL, f"logged in as {who}, but Kestra reports "
                    f"{len(errors)} basic-auth validation error(s): {errors[0]}",
                    list(errors) + details, data=[{"error": e} for e in errors])
    version = (configs or {}).get("version")
    return Item("login", PASS, f"logged in as {who}"
                + (f" (Kestra {version})" if version else "")
                + "; no basic-auth validation errors")


def fetch_login(client) -> tuple[dict | None, list[str] | None, Exception | None]:
    from kestra_ops.errors import KestraOpsError

    try:
        configs = client.configs()
    except KestraOpsError as err:
        return None, None, err
    try:
        return configs, client.basic_auth_validation_errors(), None
    except KestraOpsError as err:
        return configs, None, err


# --------------------------------------------------------------------------- e2e-flow

@dataclass
class E2ERun:
    """What happened to the throw-away flow (the fetched state of the ``e2e-flow`` item)."""

    namespace: str
    flow_id: str
    created: bool = False
    execution_id: str | None = None
    state: str | None = None
    error: str = ""
    interrupted: bool = False
    deleted: bool = False
    delete_error: str = ""
    steps: list[str] = field(default_factory=list)


def e2e_flow_source(flow_id: str, namespace: str = E2E_NAMESPACE) -> str:
    return (f"id: {flow_id}\nnamespace: {namespace}\n"
            "description: kestra-ops post-deploy check (deleted after the run)\n"
            f"labels:\n  {E2E_LABEL[0]}: {E2E_LABEL[1]}\n"
            "tasks:\n  - id: log\n"
            f"    type: {E2E_TASK_TYPE}\n"
            "    message: \"kestra-ops post-deploy check {{ execution.id }}\"\n")


def new_flow_id(now: datetime.datetime | None = None, prefix: str = "check") -> str:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return f"{prefix}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def run_e2e(client, *, timeout: float, cancel: threading.Event | None = None,
            poll: float = 0.1, namespace: str = E2E_NAMESPACE, on_created=None,
            source=None, prefix: str = "check") -> E2ERun:
    """Create the flow, execute it, wait for a final state, delete the flow (always).
    ``source(flow_id, namespace)`` gives the flow's YAML (default: the post-deploy check's)."""
    from kestra_ops.errors import KestraOpsError, NotFound

    cancel = cancel or threading.Event()
    deadline = time.monotonic() + timeout
    run = E2ERun(namespace, new_flow_id(prefix=prefix))
    try:
        client.create_flow((source or e2e_flow_source)(run.flow_id, namespace))
        run.created = True
        run.steps.append(f"created flow {namespace}.{run.flow_id}")
        if on_created is not None:
            on_created(run)
        execution = client.create_execution(namespace, run.flow_id, labels=dict([E2E_LABEL]))
        run.execution_id = execution.get("id")
        run.steps.append(f"started execution {run.execution_id}")
        while True:
            run.state = ((execution.get("state") or {}).get("current"))
            if run.state in client.TERMINAL_STATES:
                break
            if cancel.is_set():
                run.interrupted = True
                break
            if time.monotonic() + poll > deadline:
                run.error = f"execution {run.execution_id} still {run.state} after {timeout:g}s"
                break
            cancel.wait(poll)
            execution = client.get_execution(run.execution_id)
        run.steps.append(f"execution {run.execution_id} {run.state}")
    except KestraOpsError as err:
        run.error = str(err)
    except KeyboardInterrupt:
        run.interrupted = True
        raise
    finally:
        if run.created:
            try:
                client.delete_flow(namespace, run.flow_id)
                run.deleted = True
            except NotFound:
                run.deleted = True  # someone (the Ctrl-C handler) already did
            except KestraOpsError as err:
                run.delete_error = str(err)
            except KeyboardInterrupt:
                run.delete_error = "interrupted while deleting"
                raise
            run.steps.append(f"deleted flow {namespace}.{run.flow_id}" if run.deleted else
                             f"could NOT delete flow {namespace}.{run.flow_id}: "
                             f"{run.delete_error}")
    return run


def check_e2e(run: E2ERun) -> Item:
    """The ``e2e-flow`` item."""
    flow = f"{run.namespace}.{run.flow_id}"
    items = [{"flow": flow, "execution": run.execution_id, "state": run.state,
              "deleted": run.deleted, "error": run.error or run.delete_error or None}]
    details = list(run.steps)
    cleanup = "" if run.deleted or not run.created else \
        f"; the test flow was NOT deleted ({run.delete_error}): delete {flow} by hand"
    if run.interrupted:
        return Item("e2e-flow", FAIL, f"interrupted; test flow {flow} "
                    f"{'deleted' if run.deleted else 'left behind'}{cleanup}", details,
                    data=items)
    if run.error:
        return Item("e2e-flow", FAIL, f"{run.error}{cleanup}", details, data=items)
    if run.state != "SUCCESS":
        return Item("e2e-flow", FAIL, f"execution {run.execution_id} of test flow {flow} "
                    f"ended {run.state}{cleanup}", details, data=items)
    if cleanup:
        return Item("e2e-flow", WARN, f"test flow ran to SUCCESS{cleanup}", details,
                    data=items)
    return Item("e2e-flow", PASS, f"test flow {flow} ran to SUCCESS (execution "
                f"{run.execution_id}) and was deleted", details, data=items)


# --------------------------------------------------------------------------- the items

def api_item(ctx) -> Item:
    with ctx.kestra() as client:
        return check_api(client.url, *fetch_api(client))


def login_item(ctx) -> Item:
    with ctx.kestra() as client:
        return check_login(client.username, *fetch_login(client))


def e2e_item(ctx) -> Item:
    with ctx.kestra() as client:  # time left for the delete within the item's budget
        return check_e2e(run_e2e(client, timeout=max(ctx.timeout * 0.8 - 1.0, ctx.timeout / 2),
                                 cancel=ctx.cancel))


CHECKS = [
    Check("kestra-api", "Kestra answers on the flows endpoint", api_item, needs=("kestra",)),
    Check("login", "the configured credentials log in; basicAuthValidationErrors is empty",
          login_item, needs=("kestra",)),
    Check("e2e-flow", f"a test flow (namespace {E2E_NAMESPACE}, unique id) runs to SUCCESS and "
          "is deleted, also when it fails or the command is interrupted", e2e_item,
          needs=("kestra",)),
]
