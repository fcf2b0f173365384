// Exits with status 3 before answering.
module.exports = async () => {
  process.exit(3);
};
