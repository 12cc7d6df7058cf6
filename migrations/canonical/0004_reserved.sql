-- Reserved version: another branch (the SQL producer API) adds the real canonical 0004; this placeholder only keeps the version sequence contiguous (the migrator requires it) and is dropped when that file is merged.
SELECT 1;
