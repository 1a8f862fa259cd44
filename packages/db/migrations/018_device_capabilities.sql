-- What a device's agent can run (issue 12): the command types its driver(s) support, as its heartbeat
-- reports them (`capabilities`), e.g. ["rotate_ip", "config_update"]. The API refuses a command the
-- list excludes (409 PP_ERR_API_COMMAND_UNSUPPORTED) and the dashboard offers only what is in it.
-- NULL: the agent has not reported any (older agents): every command is accepted, as before.
ALTER TABLE devices ADD COLUMN capabilities jsonb CHECK (capabilities IS NULL OR jsonb_typeof(capabilities) = 'array');
