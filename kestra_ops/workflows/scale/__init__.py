"""``kestra-ops scale``: Kestra's mode (standalone / distributed) and its workers, as a guarded
release (:mod:`.run`), planned by :mod:`.plan`, judged by Kestra's own counts (:mod:`.counts`)
and the components the cluster runs (:mod:`.components`), reported by :mod:`.report`."""
