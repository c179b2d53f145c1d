-- 0012 (issues 14/15): what a processor reports about itself beyond its
-- labels and quota (model.ProcessorPresence: unavailable types with their
-- reasons, version, slots used per type, announcement interval) gets its
-- own column, a JSON object. Until now it rode in labels under keys with
-- reserved prefixes starting with U+2400 ("␀unavailable:<type>",
-- "␀used:<type>", "␀version", "␀every"); they move here, and leave the
-- labels to the user.
ALTER TABLE processors ADD COLUMN presence TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(presence));

UPDATE processors SET
    presence = (SELECT json_group_object(f.k, json(f.v)) FROM (
        SELECT 'unavailable' AS k, (SELECT json_group_object(substr(e.key, 14), e.value)
            FROM json_each(processors.labels) AS e
            WHERE substr(e.key, 1, 13) = '␀unavailable:') AS v
        UNION ALL
        -- The old reader dropped a count it could not read; so does this.
        SELECT 'used', (SELECT json_group_object(substr(e.key, 7), CAST(e.value AS INTEGER))
            FROM json_each(processors.labels) AS e
            WHERE substr(e.key, 1, 6) = '␀used:' AND e.type = 'text'
                AND length(e.value) BETWEEN 1 AND 9 AND e.value NOT GLOB '*[^0-9]*')
        UNION ALL
        SELECT 'version', json_quote(e.value) FROM json_each(processors.labels) AS e
            WHERE e.key = '␀version' AND e.type = 'text'
        UNION ALL
        -- Written as a Go duration string, as model.Duration reads it.
        SELECT 'every', json_quote(e.value) FROM json_each(processors.labels) AS e
            WHERE e.key = '␀every' AND e.type = 'text'
    ) AS f WHERE f.v <> '{}'),
    labels = (SELECT json_group_object(e.key, e.value)
        FROM json_each(processors.labels) AS e
        WHERE NOT (substr(e.key, 1, 13) = '␀unavailable:' OR substr(e.key, 1, 6) = '␀used:'
            OR e.key IN ('␀version', '␀every')))
WHERE EXISTS (SELECT 1 FROM json_each(processors.labels) AS e WHERE substr(e.key, 1, 1) = '␀');
