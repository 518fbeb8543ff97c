"""scorehouse: warehouse-native lead scoring and churn prediction.

This package holds the shared plumbing (settings, warehouse connection, dbt
invocation), the source simulator and the command line. Training lives in
`ml`, batch scoring and write-back in `scoring`.
"""

__version__ = "0.1.0"
