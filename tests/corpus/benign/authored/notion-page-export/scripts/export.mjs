const API = 'https://api.notion.com/v1';
const headers = {
  Authorization: `Bearer ${process.env.NOTION_API_KEY}`,
  'Notion-Version': '2022-06-28',
};

async function children(id) {
  const out = [];
  let cursor;
  do {
    const url = `${API}/blocks/${id}/children?page_size=100${cursor ? `&start_cursor=${cursor}` : ''}`;
    const res = await fetch(url, { headers });
    if (!res.ok) throw new Error(`Notion API ${res.status}`);
    const body = await res.json();
    out.push(...body.results);
    cursor = body.has_more ? body.next_cursor : undefined;
  } while (cursor);
  return out;
}

const text = (rich) => rich.map((r) => r.plain_text).join('');
const render = {
  paragraph: (b) => text(b.paragraph.rich_text),
  heading_1: (b) => `# ${text(b.heading_1.rich_text)}`,
  heading_2: (b) => `## ${text(b.heading_2.rich_text)}`,
  bulleted_list_item: (b) => `- ${text(b.bulleted_list_item.rich_text)}`,
  code: (b) => '```' + b.code.language + '\n' + text(b.code.rich_text) + '\n```',
};

for (const block of await children(process.argv[2])) {
  console.log((render[block.type] || (() => ''))(block));
}
