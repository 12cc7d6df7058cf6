-- Reserved version for schema {{schema}}: another branch adds the real 0005 of this set; this placeholder only keeps the version sequence contiguous (the migrator requires it) and is dropped when that file is merged.
SELECT 1;
