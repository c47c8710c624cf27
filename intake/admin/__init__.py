"""Administration: staff accounts (this step); dashboards, exports, notices and retention follow."""
