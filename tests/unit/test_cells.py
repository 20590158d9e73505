"""Table cells stay one line (helm descriptions carry newlines) and are cut sensibly."""

from kestra_ops.output.cells import one_line

HELM_FAILED = ('Upgrade "kestra" failed: context deadline exceeded\n'
               "resource Deployment/kestra/kestra-standalone not ready. status: InProgress, "
               "message: Available: 0/1\n\tresource StatefulSet/kestra/kestra-postgres not ready")


def test_whitespace_and_newlines_collapse():
    assert one_line(HELM_FAILED) == (
        'Upgrade "kestra" failed: context deadline exceeded resource Deployment/kestra/'
        "kestra-standalone not ready. status: InProgress, message: Available: 0/1 resource "
        "StatefulSet/kestra/kestra-postgres not ready")
    assert one_line("  Install complete \r\n") == "Install complete"
    assert one_line(None) == "" and one_line("") == ""


def test_truncation_at_a_word_boundary_within_the_limit():
    cut = one_line(HELM_FAILED, 60)
    assert cut == 'Upgrade "kestra" failed: context deadline exceeded...'
    assert len(cut) <= 60 and "\n" not in cut
    assert one_line("x" * 100, 10) == "xxxxxxx..."  # no space to end on
    assert one_line("short", 10) == "short"
