"""Great Expectations gates on raw inputs and on score tables."""
