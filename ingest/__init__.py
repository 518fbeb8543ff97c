"""Raw data into the warehouse: landing folders of files, loading checked exports, appending new rows
(with the watermarks that keep incremental builds exact), and the content topics the lead build reads."""
