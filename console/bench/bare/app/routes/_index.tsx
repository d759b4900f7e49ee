export async function loader() {
  return { greeting: "hello" };
}

export default function Index() {
  return <h1>Bare Remix page</h1>;
}
