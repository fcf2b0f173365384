module.exports = async () => process.pid;
