-- 0011 (issues 14/15): what a processor reports about itself beyond its
-- labels and quota (model.ProcessorPresence: unavailable types with their
-- reasons, version, slots used per type, announcement interval) gets its
-- own column. Until now it rode in labels under keys with reserved
-- prefixes starting with U+2400 ("␀unavailable:<type>", "␀used:<type>",
-- "␀version", "␀every"); they move here, and leave the labels to the user.
ALTER TABLE processors ADD COLUMN presence jsonb NOT NULL DEFAULT '{}';

UPDATE processors AS p SET
    presence = jsonb_strip_nulls(jsonb_build_object(
        'unavailable', (SELECT jsonb_object_agg(substr(e.key, 14), e.value)
            FROM jsonb_each(p.labels) AS e
            WHERE starts_with(e.key, '␀unavailable:')),
        -- The old reader dropped a count it could not read; so does this.
        'used', (SELECT jsonb_object_agg(substr(e.key, 7), (e.value #>> '{}')::integer)
            FROM jsonb_each(p.labels) AS e
            WHERE starts_with(e.key, '␀used:') AND (e.value #>> '{}') ~ '^[0-9]{1,9}$'),
        'version', p.labels -> '␀version',
        -- Written as a Go duration string, as model.Duration reads it.
        'every', p.labels -> '␀every')),
    labels = coalesce((SELECT jsonb_object_agg(e.key, e.value)
        FROM jsonb_each(p.labels) AS e
        WHERE NOT (starts_with(e.key, '␀unavailable:') OR starts_with(e.key, '␀used:')
            OR e.key IN ('␀version', '␀every'))), '{}')
WHERE EXISTS (SELECT 1 FROM jsonb_each(p.labels) AS e WHERE starts_with(e.key, '␀'));
