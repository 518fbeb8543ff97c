"""scorehouse: warehouse-native lead scoring and churn prediction.

The application layer, on top of everything else: the command line (`scorehouse.cli`) and the whole job
stage by stage (`scorehouse.pipeline`). Below it: the domains `ingest` (raw data into the warehouse), `ml`
(training), `scoring` (batch scoring and write-back), `expectations` (data gates) and `simulator` (demo data
and its ground truth); below them the core (`core`: settings, the warehouse connection, the source contract).
"""

__version__ = "0.1.0"
