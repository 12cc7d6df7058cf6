-- Installs the pgmq extension where the server offers it (provider=extension); renders empty for other providers.
-- awa:when provider=extension

CREATE EXTENSION IF NOT EXISTS pgmq;
