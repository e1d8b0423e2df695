-- Query 3: Local Item Suggestion: who is selling in OR, ID or CA in
-- category 10, and for what auction ids? An incremental join: every
-- auction meets its seller whichever arrives first.
-- As in the Nexmark repository, unchanged. Sluice plans the WHERE
-- conditions below the join (each reads one side), so the join keeps only
-- category-10 auctions and sellers of the three states.

CREATE TABLE nexmark_q3 (
  name  VARCHAR,
  city  VARCHAR,
  state  VARCHAR,
  id  BIGINT
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q3
SELECT
    P.name, P.city, P.state, A.id
FROM
    auction AS A INNER JOIN person AS P on A.seller = P.id
WHERE
    A.category = 10 and (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA');
