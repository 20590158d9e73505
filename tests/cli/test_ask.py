"""The one confirmation prompt of every command (cli.common.ask): Ctrl-C stays an interrupt,
the end of input is a no, y/n are answers."""

from __future__ import annotations

import click
import pytest

from kestra_ops.cli.common import ask


def answering(monkeypatch, reply):
    def prompt(_text):
        if isinstance(reply, BaseException):
            raise reply
        return reply

    monkeypatch.setattr(click.termui, "visible_prompt_func", prompt)


@pytest.mark.parametrize("reply, expected", [("y", True), ("yes", True), ("n", False),
                                             ("", False)])
def test_answers(monkeypatch, reply, expected):
    answering(monkeypatch, reply)
    assert ask("apply?") is expected


def test_end_of_input_is_no(monkeypatch):
    answering(monkeypatch, EOFError())
    assert ask("apply?") is False


def test_ctrl_c_is_an_interrupt_not_click_abort(monkeypatch):
    answering(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        ask("apply?")
