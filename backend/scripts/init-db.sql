-- Prepare a PostgreSQL database for the crypto prediction backend.
--
-- Run it as a superuser (or the database owner) against the target database:
--
--   psql -v ON_ERROR_STOP=1 -d crypto_prediction_db -f scripts/init-db.sql
--   psql -v ON_ERROR_STOP=1 -v crypto_password='s3cret' -d crypto_prediction_db -f scripts/init-db.sql
--
-- docker-compose also mounts it into /docker-entrypoint-initdb.d, where it runs once
-- against POSTGRES_DB when the data volume is created.
--
-- Safe to run again: every step either checks first or is naturally repeatable.
-- It creates no tables: `alembic upgrade head` owns the schema.

\set QUIET on

-- Password for a newly created crypto_user; an existing role keeps its password
-- (e.g. the one set with `createuser crypto_user -P`).
\if :{?crypto_password}
\else
\set crypto_password 'crypto_password'
\endif

BEGIN;

-- psql variables are not expanded inside dollar quotes, so hand the password to the
-- DO block through a setting that lasts until COMMIT.
SET LOCAL crypto_init.password = :'crypto_password';

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'crypto_user') THEN
        EXECUTE format(
            'CREATE ROLE crypto_user LOGIN PASSWORD %L',
            current_setting('crypto_init.password')
        );
        RAISE NOTICE 'created role crypto_user';
    ELSE
        RAISE NOTICE 'role crypto_user already exists; password left unchanged';
    END IF;
END
$$;

-- Connect to, and create schemas in, whichever database this script runs against.
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %I TO crypto_user',
                   current_database());
    -- Store timestamps and compare them in UTC, whatever the server's own zone is.
    EXECUTE format('ALTER DATABASE %I SET timezone TO %L', current_database(), 'UTC');
END
$$;

-- PostgreSQL 15+ no longer lets every role create objects in "public"; the migrations
-- run as crypto_user and create their tables there.
GRANT USAGE, CREATE ON SCHEMA public TO crypto_user;

-- Objects that the role running this script (e.g. postgres) creates in "public" later on
-- stay usable by the application.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLES TO crypto_user;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO crypto_user;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT EXECUTE ON FUNCTIONS TO crypto_user;

COMMIT;

\unset crypto_password
\set QUIET off
\echo 'init-db.sql: crypto_user is ready in database' :DBNAME
