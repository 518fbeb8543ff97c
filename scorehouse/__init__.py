"""scorehouse: warehouse-native lead scoring and churn prediction.

The application layer, on top of everything else: the command line (`scorehouse.cli`), the whole job
stage by stage (`scorehouse.pipeline`), the Python API (`scorehouse.Scorehouse`) and the HTTP service
(`scorehouse.service`, started by `scorehouse serve`). Below it: the domains `ingest` (raw data into the warehouse), `ml`
(training), `scoring` (batch scoring and write-back), `expectations` (data gates) and `simulator` (demo data
and its ground truth); below them the core (`core`: settings, the warehouse connection, the source contract).
"""

__version__ = "0.1.0"

__all__ = ["Scorehouse", "__version__"]


def __getattr__(name: str):
    # imported on first use: `import scorehouse` stays cheap for the command line
    if name == "Scorehouse":
        from scorehouse.api import Scorehouse
        return Scorehouse
    raise AttributeError(name)
